#include "core/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>

namespace isartor::core {

namespace {

// Linux refuses more than fs.nr_open (1 048 576 by default) descriptors whatever the limit says.
constexpr std::uint64_t kMostOpenFiles = 1u << 20;
constexpr std::uint64_t kReserved = 32;

}  // namespace

std::uint64_t raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = std::min<rlim_t>(limit.rlim_max, kMostOpenFiles);
    if (raised.rlim_cur > limit.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return std::min<std::uint64_t>(limit.rlim_cur, kMostOpenFiles);
}

ConnectionBudget connection_budget(std::uint64_t open_files, std::uint64_t max_connections,
                                   std::uint64_t max_upstream_connections) {
  const std::uint64_t usable = open_files > kReserved * 2 ? open_files - std::max(kReserved, open_files / 8)
                                                            : open_files / 2;
  ConnectionBudget budget;
  budget.clients = max_connections != 0 ? max_connections : std::max<std::uint64_t>(1, usable * 6 / 7);
  budget.upstream = max_upstream_connections != 0 ? max_upstream_connections : std::max<std::uint64_t>(1, usable / 7);
  return budget;
}

}  // namespace isartor::core
