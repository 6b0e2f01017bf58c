#pragma once
// File descriptors: the process limit and how the gateway divides it between client connections,
// upstream connections and everything else (model files, logs, epoll, eventfds).
#include <cstdint>

namespace isartor::core {

// Raises the soft RLIMIT_NOFILE to the hard limit (what systemd's LimitNOFILE and nginx's
// worker_rlimit_nofile are for) and returns the soft limit in effect afterwards. Start-up only;
// not thread-safe.
std::uint64_t raise_open_files_limit();

struct ConnectionBudget {
  std::uint64_t clients = 0;   // client connections open at once
  std::uint64_t upstream = 0;  // upstream (provider, sidecar) connections open at once
};

// The budget for `open_files` descriptors: a configured value wins, 0 means automatic: an eighth
// of the descriptors (at least 32; half of a tiny limit) kept for the rest, of what remains six
// sevenths for clients and a seventh for upstream (1024 descriptors: 768 and 128). Pure.
ConnectionBudget connection_budget(std::uint64_t open_files, std::uint64_t max_connections,
                                   std::uint64_t max_upstream_connections);

}  // namespace isartor::core
