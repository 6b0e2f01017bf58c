#pragma once
// Internal to the hf_* files: paths and atomic updates of the huggingface_hub cache layout
// described in hf_hub.h. Names given here are validated first, so none can escape the cache.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace isartor::inference::hf {

// "org/name" or "name" of [A-Za-z0-9._-], without "--" or "..", as huggingface_hub accepts. Pure.
bool valid_repo_id(std::string_view repo_id);
// A relative '/'-separated path without empty, "." or ".." segments (filenames, revisions). Pure.
bool valid_relative_path(std::string_view path);
// 40 lower-case hex digits. Pure.
bool is_commit_hash(std::string_view text);
// An etag usable as a blob file name: [A-Za-z0-9._+=-], not starting with '.'. Pure.
bool valid_etag(std::string_view etag);

// <cache>/models--org--name. Pure.
std::filesystem::path repo_folder(const std::filesystem::path& cache, const std::string& repo_id);
// <cache>/.locks/models--org--name/<etag>.lock, where huggingface_hub takes its lock. Pure.
std::filesystem::path lock_path(const std::filesystem::path& cache, const std::string& repo_id,
                                const std::string& etag);

// The commit `revision` resolves to in the cache: itself when it is a commit hash, else the
// content of refs/<revision>; nullopt when unknown. Thread-safe.
std::optional<std::string> cached_commit(const std::filesystem::path& repo,
                                         const std::string& revision);

// Points refs/<revision> at `commit` (atomic replace; no-op when it already does, or when the
// revision is the commit itself). Thread- and process-safe.
Result<void> write_ref(const std::filesystem::path& repo, const std::string& revision,
                       const std::string& commit);

// Makes snapshots/<commit>/<filename> a relative symlink to blobs/<etag> (atomic replace) and
// returns its path. Thread- and process-safe.
Result<std::filesystem::path> link_snapshot(const std::filesystem::path& repo,
                                            const std::string& commit, const std::string& filename,
                                            const std::string& etag);

// Creates the empty .no_exist/<commit>/<filename> marker huggingface_hub leaves for a file the
// repo lacks. Best effort. Thread-safe.
void mark_missing(const std::filesystem::path& repo, const std::string& commit,
                  const std::string& filename);

// Writes <cache>/CACHEDIR.TAG (the Cache Directory Tagging Standard file huggingface_hub writes,
// so backup tools skip the cache) unless it exists. Best effort. Thread-safe.
void tag_cache_dir(const std::filesystem::path& cache);

// A file name unique to this process and thread, for temporaries renamed into place. Thread-safe.
std::string unique_suffix();

}  // namespace isartor::inference::hf
