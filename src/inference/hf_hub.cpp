#include "inference/hf_hub.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>

#include "core/log.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "inference/hf_cache.h"
#include "inference/hf_http.h"
#include "inference/progress.h"

extern char** environ;

namespace isartor::inference {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTarget = "isartor::models";
constexpr long kHeadTimeoutSecs = 10;  // huggingface_hub's HF_HUB_ETAG_TIMEOUT default
constexpr int kMaxDownloadRetries = 5;
constexpr auto kFirstRetryDelay = std::chrono::milliseconds(500);
constexpr auto kMaxRetryDelay = std::chrono::milliseconds(8000);

// ---------------------------------------------------------------------------------------------
// Configuration

std::string env_value(const std::map<std::string, std::string>& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

// huggingface_hub's _is_true.
bool is_true(const std::string& value) {
  const std::string upper = core::to_upper(value);
  return upper == "1" || upper == "ON" || upper == "YES" || upper == "TRUE";
}

// os.path.expanduser: a leading "~" is the home directory.
fs::path expand_user(const std::string& path, const std::map<std::string, std::string>& env) {
  if (path != "~" && !path.starts_with("~/")) return path;
  std::string home = env_value(env, "HOME");
  if (home.empty()) {
    if (const passwd* entry = ::getpwuid(::getuid()); entry != nullptr) home = entry->pw_dir;
  }
  return home + path.substr(1);
}

std::string read_token_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return std::string(core::trim(text));
}

// ---------------------------------------------------------------------------------------------
// What is being resolved, and the messages about it

struct Target {
  const HubConfig& hub;
  const std::string& repo_id;
  const std::string& filename;
  const std::string& revision;
  fs::path repo;  // <cache>/models--org--name

  std::string name() const { return repo_id + "/" + filename; }
  std::string resolve_url() const {
    return fmt::format("{}/{}/resolve/{}/{}", hub.endpoint, repo_id, hf::url_quote(revision, ""),
                       hf::url_quote(filename, "/"));
  }
  std::string way_out() const {
    return fmt::format(
        "run `isartor models pull` on a connected machine, or copy the HF cache to {}, or set "
        "ISARTOR__EMBEDDING__MODEL_PATH / ISARTOR__LAYER2__MODEL_PATH to a local file",
        hub.cache_dir.string());
  }
};

Error unavailable(std::string message, int status = 0) {
  Error error(ErrorCode::kUnavailable, std::move(message));
  error.upstream_status = status;
  return error;
}

Error http_error(const Target& t, const hf::Response& response) {
  std::string code = response.header("x-error-code");
  std::string message = response.header("x-error-message");
  std::string detail = message.empty() ? "" : ": " + message;
  long status = response.status;
  if (status == 401 || status == 403 || code == "GatedRepo") {
    return unavailable(
        fmt::format("the Hugging Face hub denied access to {} (HTTP {}{}). {}: set HF_TOKEN to a "
                    "token with read access to {} (for a gated model, accept its terms on {}/{} first)",
                    t.name(), status, detail,
                    t.hub.token.empty() ? "No token was sent" : "The token in HF_TOKEN was refused",
                    t.repo_id, t.hub.endpoint, t.repo_id),
        static_cast<int>(status));
  }
  if (code == "RepositoryNotFound") {
    return unavailable(fmt::format("repository '{}' not found on {} (HTTP {}); if it is private or "
                                   "gated, set HF_TOKEN",
                                   t.repo_id, t.hub.endpoint, status),
                       static_cast<int>(status));
  }
  if (code == "RevisionNotFound") {
    return unavailable(fmt::format("revision '{}' not found in repository '{}' (HTTP {})", t.revision,
                                   t.repo_id, status),
                       static_cast<int>(status));
  }
  if (status == 404) {
    return unavailable(fmt::format("file '{}' not found in repository '{}' at revision '{}' (HTTP 404)",
                                   t.filename, t.repo_id, t.revision),
                       404);
  }
  return unavailable(fmt::format("the Hugging Face hub answered HTTP {} for {}{}", status, t.name(), detail),
                     static_cast<int>(status));
}

// ---------------------------------------------------------------------------------------------
// HEAD: the file's metadata

struct FileMetadata {
  std::string commit;
  std::string etag;  // sha256 for LFS files, git blob sha1 otherwise
  std::optional<std::uint64_t> size;
  std::string location;  // where to GET the bytes (a CDN for LFS files)
  bool lfs = false;
};

struct HeadError {
  Error error;
  bool use_cache;  // false when the hub said the file does not exist
};

// huggingface_hub's _normalize_etag: etag.lstrip("W/").strip('"').
std::string normalize_etag(std::string etag) {
  etag.erase(0, std::min(etag.find_first_not_of("W/"), etag.size()));
  auto start = etag.find_first_not_of('"');
  if (start == std::string::npos) return {};
  return etag.substr(start, etag.find_last_not_of('"') - start + 1);
}

std::optional<std::uint64_t> parse_size(const std::string& text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::expected<FileMetadata, HeadError> fetch_metadata(const Target& t) {
  hf::Request request;
  request.method = "HEAD";
  request.url = t.resolve_url();
  request.token = t.hub.token;
  request.headers = {"Accept-Encoding: identity"};
  request.redirects = hf::Redirects::kSameOrigin;
  request.timeout_secs = kHeadTimeoutSecs;
  auto response = hf::perform(request);
  if (!response) {
    return std::unexpected(HeadError{
        unavailable(fmt::format("could not reach the Hugging Face hub at {} for {}: {}", t.hub.endpoint,
                                t.name(), response.error().message)),
        true});
  }
  std::string commit = response->header("x-repo-commit");
  if (response->status >= 400) {
    bool missing_file = response->status == 404 && response->header("x-error-code") == "EntryNotFound";
    if (missing_file && hf::is_commit_hash(commit)) {
      hf::mark_missing(t.repo, commit, t.filename);
      (void)hf::write_ref(t.repo, t.revision, commit);  // best effort, as huggingface_hub does
    }
    return std::unexpected(HeadError{http_error(t, *response), !missing_file});
  }
  FileMetadata meta;
  meta.commit = commit;
  std::string linked_etag = response->header("x-linked-etag");
  meta.lfs = !linked_etag.empty();
  meta.etag = normalize_etag(meta.lfs ? linked_etag : response->header("etag"));
  // A redirect's Content-Length is that of its own (empty) body, not the file's.
  const bool redirect = response->status >= 300;
  std::string linked_size = response->header("x-linked-size");
  meta.size = parse_size(!linked_size.empty() || redirect ? linked_size : response->header("content-length"));
  std::string location = response->header("location");
  meta.location = redirect && !location.empty() ? hf::resolve_location(response->url, location) : response->url;
  if (!hf::is_commit_hash(meta.commit) || !hf::valid_etag(meta.etag)) {
    return std::unexpected(HeadError{
        unavailable(fmt::format("{} did not answer like the Hugging Face hub for {} (HTTP {}, no valid "
                                "X-Repo-Commit/ETag headers); check HF_ENDPOINT and any proxy in between",
                                t.hub.endpoint, t.name(), response->status)),
        true});
  }
  return meta;
}

// ---------------------------------------------------------------------------------------------
// GET: the blob

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Error errno_error(const std::string& what, const fs::path& path, int error) {
  return unavailable(fmt::format("could not {} {}: {}", what, path.string(), std::strerror(error)));
}

// An exclusive flock on the blob's lock file, as huggingface_hub's FileLock takes; held until
// destroyed. flock locks belong to the open file, so this excludes threads as well as processes.
Result<std::unique_ptr<Fd>> lock_blob(const fs::path& path, const std::string& name) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  auto fd = std::make_unique<Fd>(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd->get() < 0) return std::unexpected(errno_error("open the lock file", path, errno));
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) == 0) return fd;
  LOG_INFO(kTarget, "waiting for another download of {} to finish (lock {})", name, path.string());
  while (::flock(fd->get(), LOCK_EX) != 0) {
    if (errno != EINTR) return std::unexpected(errno_error("lock", path, errno));
  }
  return fd;
}

// Downloads meta.location into <blob>.incomplete, resuming what is there, then renames it to `blob`.
class BlobDownload {
 public:
  BlobDownload(const Target& t, const FileMetadata& meta, fs::path blob)
      : t_(t), meta_(meta), blob_(std::move(blob)), incomplete_(blob_.string() + ".incomplete") {}

  Result<void> run() {
    Fd fd(::open(incomplete_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) return std::unexpected(errno_error("create", incomplete_, errno));
    fd_ = fd.get();
    RETURN_IF_ERROR(prepare_resume());
    const bool verify = meta_.lfs && meta_.etag.size() == 64;
    const bool may_be_stale = have_ > 0;  // a sha mismatch may then come from an old partial file
    const auto started = std::chrono::steady_clock::now();
    LOG_INFO(kTarget, "downloading {} ({}) from {}{}", t_.name(), size_text(), t_.hub.endpoint,
             have_ > 0 ? " (resuming at " + format_megabytes(have_) + ")" : "");
    Progress progress(t_.filename, meta_.size.value_or(0), have_, Progress::default_style());
    progress_ = &progress;
    auto fetched = fetch_with_retries();
    if (fetched && verify && !sha_matches()) {
      if (!may_be_stale) {
        fetched = mismatch_error();
      } else {
        LOG_WARN(kTarget, "the partial download {} was corrupt (sha256 mismatch); downloading {} again",
                 incomplete_.string(), t_.name());
        fetched = restart();
        if (fetched) fetched = fetch_with_retries();
        if (fetched && !sha_matches()) fetched = mismatch_error();
      }
    }
    progress.finish();
    if (!fetched) return fetched;
    std::error_code ec;
    fs::rename(incomplete_, blob_, ec);
    if (ec) return fail(ErrorCode::kUnavailable, "could not move " + incomplete_.string() + ": " + ec.message());
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    LOG_INFO(kTarget, "downloaded {} ({}) in {:.1f} s", t_.name(), size_text(), seconds);
    return {};
  }

 private:
  std::string size_text() const {
    return meta_.size ? format_megabytes(*meta_.size) : std::string("size unknown");
  }

  // Keeps the bytes already in .incomplete (hashing them) unless there are more than the file has.
  Result<void> prepare_resume() {
    struct stat info{};
    if (::fstat(fd_, &info) != 0) return std::unexpected(errno_error("stat", incomplete_, errno));
    have_ = static_cast<std::uint64_t>(info.st_size);
    if (meta_.size && have_ > *meta_.size) return restart();
    std::string buffer(1 << 20, '\0');
    for (std::uint64_t offset = 0; offset < have_;) {
      ssize_t n = ::pread(fd_, buffer.data(), buffer.size(), static_cast<off_t>(offset));
      if (n <= 0) return std::unexpected(errno_error("read", incomplete_, n < 0 ? errno : EIO));
      sha_.update(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      offset += static_cast<std::uint64_t>(n);
    }
    return {};
  }

  Result<void> restart() {
    if (::ftruncate(fd_, 0) != 0) return std::unexpected(errno_error("truncate", incomplete_, errno));
    have_ = 0;
    sha_.reset();
    return {};
  }

  bool sha_matches() { return to_hex(sha_.finish()) == meta_.etag; }

  // Discards the bad bytes so that the next attempt starts over instead of resuming them.
  Result<void> mismatch_error() {
    (void)restart();
    return fail(ErrorCode::kUnavailable,
                fmt::format("{} downloaded from {} does not match its sha256 {}; try again later",
                            t_.name(), t_.hub.endpoint, meta_.etag));
  }

  bool complete() const { return meta_.size && have_ == *meta_.size; }

  // GETs the rest of the file, retrying (and resuming) after cut connections and 5xx answers; as
  // in huggingface_hub, it gives up after kMaxDownloadRetries attempts that brought no new bytes.
  Result<void> fetch_with_retries() {
    auto delay = kFirstRetryDelay;
    for (int failures = 0;;) {
      if (complete()) return {};
      const std::uint64_t before = have_;
      auto outcome = fetch_once();
      if (outcome.done) {
        if (meta_.size && !complete()) {
          auto got = have_;
          (void)restart();  // a whole answer of the wrong size cannot be resumed into the right one
          return fail(ErrorCode::kUnavailable,
                      fmt::format("{}: expected {} bytes but the server sent {}", t_.name(), *meta_.size, got));
        }
        return {};
      }
      if (have_ > before) {
        failures = 0;
        delay = kFirstRetryDelay;
      }
      if (!outcome.retry || ++failures > kMaxDownloadRetries) return std::unexpected(outcome.error);
      LOG_WARN(kTarget, "download of {} interrupted at {} ({}); resuming in {} ms", t_.name(),
               format_megabytes(have_), outcome.error.message, delay.count());
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, kMaxRetryDelay);
    }
  }

  struct Outcome {
    bool done = false;
    bool retry = false;
    Error error;
  };

  Outcome fetch_once() {
    hf::Request request;
    request.url = meta_.location;
    // huggingface_hub drops the token when the file lives on another host (the LFS CDN).
    if (hf::same_origin(meta_.location, t_.resolve_url())) request.token = t_.hub.token;
    request.headers = {"Accept-Encoding: identity"};
    if (have_ > 0) request.headers.push_back(fmt::format("Range: bytes={}-", have_));
    bool range_mismatch = false;
    std::optional<Error> file_error;  // a local failure that aborted the transfer
    auto on_headers = [&](const hf::Response& response) {
      if (response.status != 206) {  // a full answer: whatever was resumed is void
        if (auto reset = have_ > 0 ? restart() : Result<void>(); !reset) file_error = reset.error();
        return !file_error;
      }
      // "bytes START-END/TOTAL" must continue exactly where the file ends.
      std::string range = response.header("content-range");
      auto space = range.find(' ');
      auto dash = range.find('-');
      range_mismatch = space == std::string::npos || dash == std::string::npos ||
                       parse_size(range.substr(space + 1, dash - space - 1)) != have_;
      return !range_mismatch;
    };
    auto on_body = [&](std::string_view bytes) {
      if (t_.hub.stop.stop_requested()) {
        file_error = unavailable(fmt::format("download of {} stopped", t_.name()));
        return false;
      }
      for (std::string_view rest = bytes; !rest.empty();) {
        ssize_t n = ::pwrite(fd_, rest.data(), rest.size(), static_cast<off_t>(have_ + (bytes.size() - rest.size())));
        if (n < 0) {
          file_error = errno_error("write", incomplete_, errno);
          return false;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
      }
      sha_.update(bytes);
      have_ += bytes.size();
      progress_->update(have_);
      if (t_.hub.on_progress) t_.hub.on_progress(t_.filename, have_, meta_.size.value_or(0));
      return true;
    };
    auto response = hf::perform(request, on_headers, on_body);
    if (file_error) return {false, false, *file_error};
    if (!response) {
      return {false, true, unavailable(fmt::format("download of {} failed: {}", t_.name(), response.error().message))};
    }
    long status = response->status;
    if (range_mismatch || status == 416) {
      if (auto reset = restart(); !reset) return {false, false, reset.error()};
      return {false, true, unavailable(fmt::format("the server could not resume {} (HTTP {})", t_.name(), status))};
    }
    if (status >= 200 && status < 300) return {true, false, {}};
    bool transient = status >= 500 || status == 429 || status == 408;
    return {false, transient, http_error(t_, *response)};
  }

  const Target& t_;
  const FileMetadata& meta_;
  fs::path blob_;
  fs::path incomplete_;
  int fd_ = -1;
  std::uint64_t have_ = 0;
  Sha256 sha_;
  Progress* progress_ = nullptr;
};

Result<fs::path> cached_or(const Target& t, Error error) {
  if (auto path = try_load_from_cache(t.hub, t.repo_id, t.filename, t.revision)) return *path;
  return std::unexpected(std::move(error));
}

}  // namespace

HubConfig hub_config(const config::Config& config, const std::map<std::string, std::string>& env) {
  HubConfig hub;
  if (std::string endpoint = env_value(env, "HF_ENDPOINT"); !endpoint.empty()) {
    while (endpoint.ends_with('/')) endpoint.pop_back();
    hub.endpoint = endpoint;
  }
  std::string hf_home = env_value(env, "HF_HOME");
  if (hf_home.empty()) {
    std::string xdg = env_value(env, "XDG_CACHE_HOME");
    hf_home = (xdg.empty() ? std::string("~/.cache") : xdg) + "/huggingface";
  }
  const fs::path home = expand_user(hf_home, env);
  std::string cache = config.hf_cache_dir;
  for (const char* name : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}) {
    if (cache.empty()) cache = env_value(env, name);
  }
  hub.cache_dir = cache.empty() ? home / "hub" : expand_user(cache, env);

  hub.token = core::trim(env_value(env, "HF_TOKEN"));
  if (hub.token.empty()) hub.token = core::trim(env_value(env, "HUGGING_FACE_HUB_TOKEN"));
  if (hub.token.empty()) {
    std::string token_path = env_value(env, "HF_TOKEN_PATH");
    hub.token = read_token_file(token_path.empty() ? home / "token" : expand_user(token_path, env));
  }

  // huggingface_hub reads `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE`: a set HF_HUB_OFFLINE wins.
  std::string offline = env_value(env, "HF_HUB_OFFLINE");
  if (offline.empty()) offline = env_value(env, "TRANSFORMERS_OFFLINE");
  hub.offline = config.offline_mode || is_true(offline);
  return hub;
}

HubConfig hub_config_from_env(const config::Config& config) {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    auto equals = text.find('=');
    if (equals != std::string_view::npos) env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return hub_config(config, env);
}

Result<fs::path> hf_hub_download(const HubConfig& hub, const std::string& repo_id,
                                 const std::string& filename, const std::string& revision) {
  if (!hf::valid_repo_id(repo_id)) {
    return fail(ErrorCode::kUnavailable, "invalid Hugging Face repo id '" + repo_id + "' (expected org/name)");
  }
  if (!hf::valid_relative_path(filename) || !hf::valid_relative_path(revision)) {
    return fail(ErrorCode::kUnavailable,
                fmt::format("invalid file '{}' or revision '{}' for {}", filename, revision, repo_id));
  }
  if (hub.cache_dir.empty()) return fail(ErrorCode::kUnavailable, "no Hugging Face cache directory configured");
  const Target t{hub, repo_id, filename, revision, hf::repo_folder(hub.cache_dir, repo_id)};

  // A commit's files never change, so a cached one needs no HEAD (as in huggingface_hub).
  if (hf::is_commit_hash(revision)) {
    if (auto path = try_load_from_cache(hub, repo_id, filename, revision)) return *path;
  }
  if (hub.offline) {
    return cached_or(t, unavailable(fmt::format(
                            "{} (revision '{}') is not in the Hugging Face cache at {} and offline mode is on "
                            "(HF_HUB_OFFLINE or ISARTOR__OFFLINE_MODE): {}",
                            t.name(), revision, hub.cache_dir.string(), t.way_out())));
  }

  auto meta = fetch_metadata(t);
  if (!meta) {
    if (!meta.error().use_cache) return std::unexpected(meta.error().error);
    if (auto path = try_load_from_cache(hub, repo_id, filename, revision)) {
      LOG_WARN(kTarget, "{}; using the cached copy {}", meta.error().error.message, path->string());
      return *path;
    }
    Error error = meta.error().error;
    error.message += fmt::format(". It is not cached at {} either: {}", hub.cache_dir.string(), t.way_out());
    return std::unexpected(std::move(error));
  }
  fs::path pointer = t.repo / "snapshots" / meta->commit / filename;
  std::error_code ec;
  if (fs::exists(pointer, ec)) {  // follows the symlink: its blob is there too
    (void)hf::write_ref(t.repo, revision, meta->commit);  // best effort: the cache may be read-only
    return pointer;
  }
  hf::tag_cache_dir(hub.cache_dir);
  RETURN_IF_ERROR(hf::write_ref(t.repo, revision, meta->commit));
  fs::path blob = t.repo / "blobs" / meta->etag;
  if (!fs::exists(blob, ec)) {
    fs::create_directories(blob.parent_path(), ec);
    if (ec) return fail(ErrorCode::kUnavailable, "could not create " + blob.parent_path().string() + ": " + ec.message());
    ASSIGN_OR_RETURN(auto lock, lock_blob(hf::lock_path(hub.cache_dir, repo_id, meta->etag), t.name()));
    // Whoever held the lock before us may have finished this very blob.
    if (!fs::exists(blob, ec)) {
      RETURN_IF_ERROR(BlobDownload(t, *meta, blob).run());
    }
  }
  return hf::link_snapshot(t.repo, meta->commit, filename, meta->etag);
}

}  // namespace isartor::inference
