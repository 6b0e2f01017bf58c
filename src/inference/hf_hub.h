#pragma once
// Model files from the Hugging Face hub, resolved and cached exactly as the `huggingface_hub`
// Python library does, so both share one cache:
//   <cache>/models--<org>--<name>/blobs/<etag>                  file contents (etag = LFS sha256 or git sha1)
//   <cache>/models--<org>--<name>/snapshots/<commit>/<filename>  relative symlink to ../../blobs/<etag>
//   <cache>/models--<org>--<name>/refs/<revision>               the commit hash the revision resolved to
//   <cache>/models--<org>--<name>/.no_exist/<commit>/<filename>  empty marker: the file is not in the repo
//   <cache>/.locks/models--<org>--<name>/<etag>.lock             flock held while a blob is downloaded
// Blocking and network-bound: for start-up and the `isartor models` CLI, never the request path.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace isartor::inference {

struct HubConfig {
  std::string endpoint = "https://huggingface.co";  // no trailing '/'
  std::filesystem::path cache_dir;                  // the "hub" cache folder itself
  std::string token;                                // sent as "Authorization: Bearer"; empty = none
  bool offline = false;                             // true: never touch the network
  // Stops a download in progress (kUnavailable; the .incomplete file stays for a resume).
  std::stop_token stop;
  // Told about a download's progress (file name, bytes present, total or 0), on the downloading
  // thread; besides the bar or log lines. Empty: none.
  std::function<void(std::string_view, std::uint64_t, std::uint64_t)> on_progress;
};

// The hub settings huggingface_hub would use, from `env` (name -> value) and the gateway config:
// endpoint HF_ENDPOINT; cache dir config.hf_cache_dir (ISARTOR__HF_CACHE_DIR) > HF_HUB_CACHE
// (or HUGGINGFACE_HUB_CACHE) > $HF_HOME/hub > ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub;
// token HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) > the file at HF_TOKEN_PATH or $HF_HOME/token;
// offline when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1/true/yes/on or config.offline_mode.
// Reads only the token file. Thread-safe.
HubConfig hub_config(const config::Config& config, const std::map<std::string, std::string>& env);

// hub_config() over the process environment. Thread-safe if nothing modifies the environment.
HubConfig hub_config_from_env(const config::Config& config);

// Returns the local path (the snapshot symlink) of `filename` in model repo `repo_id` at
// `revision` (branch, tag or commit hash), downloading it into the cache first when needed.
// Online: one HEAD to {endpoint}/{repo_id}/resolve/{revision}/{filename} (none when `revision` is
// a commit already cached), then a GET only when the blob is missing; interrupted downloads resume
// from blobs/<etag>.incomplete; LFS files are checked against their sha256. When the hub cannot be
// reached or refuses the HEAD, a copy cached for the commit refs/<revision> names is used.
// Offline: the cache only. Every error is kUnavailable with a message naming the repo and file and
// what to do (HF_TOKEN for 401/403, the way out when offline and not cached). Blocking; logs and
// shows progress (see progress.h). Thread-safe and process-safe: concurrent callers of the same
// blob wait for one download.
Result<std::filesystem::path> hf_hub_download(const HubConfig& hub, const std::string& repo_id,
                                              const std::string& filename,
                                              const std::string& revision = "main");

// The cached snapshot path for the commit refs/<revision> names (or `revision` itself when it is
// a commit hash), or nullopt when it is not cached or the arguments are invalid. Never touches the
// network. Thread-safe.
std::optional<std::filesystem::path> try_load_from_cache(const HubConfig& hub,
                                                         const std::string& repo_id,
                                                         const std::string& filename,
                                                         const std::string& revision = "main");

// One file of a cached snapshot, for `isartor models list`.
struct CachedFile {
  std::string repo_id;            // "sentence-transformers/all-MiniLM-L6-v2"
  std::string commit;             // the snapshot's commit hash
  std::vector<std::string> refs;  // revisions whose refs/ file names this commit ("main"); sorted
  std::string filename;           // path inside the repo ("onnx/model.onnx")
  std::uint64_t size = 0;         // bytes of the blob
  std::filesystem::path path;     // snapshot path (what hf_hub_download returns)
};

// Every model file cached under hub.cache_dir, sorted by repo, commit and filename; a missing
// cache dir is an empty list; snapshot entries whose blob is gone are skipped. Errors
// (kUnavailable) only for unreadable folders. Never touches the network. Thread-safe.
Result<std::vector<CachedFile>> list_cached(const HubConfig& hub);

}  // namespace isartor::inference
