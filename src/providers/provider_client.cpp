#include "providers/provider_client.h"

namespace isartor::providers {

namespace {

Error no_pass_through(std::string_view provider) {
  return Error(ErrorCode::kInternal, "the " + std::string(provider) + " provider takes no request in another format");
}

}  // namespace

bool ProviderClient::speaks(api::WireFormat format) const {
  (void)format;
  return false;
}

boost::asio::awaitable<Result<NativeCompletion>> ProviderClient::complete_native(const PassThrough& request) {
  (void)request;
  co_return std::unexpected(no_pass_through(name()));
}

boost::asio::awaitable<Result<std::unique_ptr<ChunkStream>>> ProviderClient::stream_native(const PassThrough& request) {
  (void)request;
  co_return std::unexpected(no_pass_through(name()));
}

}  // namespace isartor::providers
