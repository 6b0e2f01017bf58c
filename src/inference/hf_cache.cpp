#include "inference/hf_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "inference/hf_hub.h"

namespace isartor::inference::hf {

namespace fs = std::filesystem;

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

Error fs_error(const std::string& what, const fs::path& path, const std::error_code& ec) {
  return Error(ErrorCode::kUnavailable,
               fmt::format("could not {} {}: {}", what, path.string(), ec.message()));
}

// Writes `content` next to `target` and renames it over `target`, so readers never see half a file.
Result<void> replace_file(const fs::path& target, const std::string& content) {
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) return std::unexpected(fs_error("create", target.parent_path(), ec));
  fs::path temp = target;
  temp += ".tmp" + unique_suffix();
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.flush()) {
      return fail(ErrorCode::kUnavailable, "could not write " + temp.string());
    }
  }
  fs::rename(temp, target, ec);
  if (ec) {
    fs::remove(temp, ec);
    return std::unexpected(fs_error("write", target, ec));
  }
  return {};
}

}  // namespace

bool valid_repo_id(std::string_view repo_id) {
  auto slash = repo_id.find('/');
  auto valid_part = [](std::string_view part) {
    return !part.empty() && part.size() <= 96 && std::all_of(part.begin(), part.end(), is_name_char) &&
           part.find("--") == std::string_view::npos && part.find("..") == std::string_view::npos &&
           part.front() != '-' && part.front() != '.' && part.back() != '-' && part.back() != '.';
  };
  if (slash == std::string_view::npos) return valid_part(repo_id);
  return valid_part(repo_id.substr(0, slash)) && valid_part(repo_id.substr(slash + 1));
}

bool valid_relative_path(std::string_view path) {
  if (path.empty() || path.find('\0') != std::string_view::npos) return false;
  std::size_t start = 0;
  while (true) {
    auto end = path.find('/', start);
    auto segment = path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

bool is_commit_hash(std::string_view text) {
  return text.size() == 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool valid_etag(std::string_view etag) {
  return !etag.empty() && etag.size() <= 128 && etag.front() != '.' &&
         std::all_of(etag.begin(), etag.end(),
                     [](char c) { return is_name_char(c) || c == '+' || c == '='; });
}

fs::path repo_folder(const fs::path& cache, const std::string& repo_id) {
  std::string name = "models--" + repo_id;
  if (auto slash = name.find('/'); slash != std::string::npos) name.replace(slash, 1, "--");
  return cache / name;
}

fs::path lock_path(const fs::path& cache, const std::string& repo_id, const std::string& etag) {
  return cache / ".locks" / repo_folder(cache, repo_id).filename() / (etag + ".lock");
}

std::optional<std::string> cached_commit(const fs::path& repo, const std::string& revision) {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(repo / "refs" / revision, std::ios::binary);
  std::string commit;
  if (!in || !std::getline(in, commit)) return std::nullopt;
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

Result<void> write_ref(const fs::path& repo, const std::string& revision, const std::string& commit) {
  if (revision == commit || cached_commit(repo, revision) == commit) return {};
  return replace_file(repo / "refs" / revision, commit);  // no newline, as huggingface_hub writes it
}

Result<fs::path> link_snapshot(const fs::path& repo, const std::string& commit,
                               const std::string& filename, const std::string& etag) {
  fs::path pointer = repo / "snapshots" / commit / filename;
  std::error_code ec;
  fs::create_directories(pointer.parent_path(), ec);
  if (ec) return std::unexpected(fs_error("create", pointer.parent_path(), ec));
  // Relative, so the cache folder can be moved or mounted elsewhere.
  fs::path target = (repo / "blobs" / etag).lexically_relative(pointer.parent_path());
  fs::path temp = pointer;
  temp += ".tmp" + unique_suffix();
  fs::create_symlink(target, temp, ec);
  if (ec) return std::unexpected(fs_error("create the symlink", temp, ec));
  fs::rename(temp, pointer, ec);
  if (ec) {
    fs::remove(temp, ec);
    return std::unexpected(fs_error("create the symlink", pointer, ec));
  }
  return pointer;
}

void mark_missing(const fs::path& repo, const std::string& commit, const std::string& filename) {
  fs::path marker = repo / ".no_exist" / commit / filename;
  std::error_code ec;
  fs::create_directories(marker.parent_path(), ec);
  std::ofstream touch(marker, std::ios::app);
}

void tag_cache_dir(const fs::path& cache) {
  fs::path tag = cache / "CACHEDIR.TAG";
  std::error_code ec;
  if (fs::exists(tag, ec)) return;
  (void)replace_file(tag,
                     "Signature: 8a477f597d28d172789f06886806bc55\n"
                     "# This file is a cache directory tag created by huggingface_hub.\n"
                     "# For information about cache directory tags, see:\n"
                     "#\thttps://bford.info/cachedir/\n");
}

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  std::ostringstream out;
  out << '.' << ::getpid() << '.' << std::this_thread::get_id() << '.' << counter++;
  return out.str();
}

}  // namespace isartor::inference::hf

namespace isartor::inference {

namespace fs = std::filesystem;

std::optional<fs::path> try_load_from_cache(const HubConfig& hub, const std::string& repo_id,
                                            const std::string& filename, const std::string& revision) {
  if (hub.cache_dir.empty() || !hf::valid_repo_id(repo_id) || !hf::valid_relative_path(filename) ||
      !hf::valid_relative_path(revision)) {
    return std::nullopt;
  }
  fs::path repo = hf::repo_folder(hub.cache_dir, repo_id);
  auto commit = hf::cached_commit(repo, revision);
  if (!commit) return std::nullopt;
  fs::path pointer = repo / "snapshots" / *commit / filename;
  std::error_code ec;
  if (!fs::is_regular_file(pointer, ec)) return std::nullopt;  // follows the symlink to its blob
  return pointer;
}

Result<std::vector<CachedFile>> list_cached(const HubConfig& hub) {
  std::vector<CachedFile> files;
  std::error_code ec;
  if (!fs::is_directory(hub.cache_dir, ec)) return files;
  auto unreadable = [](const fs::path& path, const std::error_code& error) {
    return fail(ErrorCode::kUnavailable, fmt::format("could not read {}: {}", path.string(), error.message()));
  };
  for (fs::directory_iterator repos(hub.cache_dir, ec), end; !ec && repos != end; repos.increment(ec)) {
    std::string folder = repos->path().filename().string();
    std::error_code stat_error;
    if (!folder.starts_with("models--") || !repos->is_directory(stat_error)) continue;
    // models--org--name: repo names cannot contain "--", so every "--" was a '/'.
    std::string repo_id = folder.substr(8);
    for (auto at = repo_id.find("--"); at != std::string::npos; at = repo_id.find("--", at + 1)) {
      repo_id.replace(at, 2, "/");
    }
    std::map<std::string, std::vector<std::string>> refs_by_commit;
    fs::path refs = repos->path() / "refs";
    if (fs::is_directory(refs, stat_error)) {
      std::error_code walk;
      for (fs::recursive_directory_iterator it(refs, walk), stop; !walk && it != stop; it.increment(walk)) {
        if (!it->is_regular_file(stat_error)) continue;
        std::string revision = it->path().lexically_relative(refs).generic_string();
        if (auto commit = hf::cached_commit(repos->path(), revision)) refs_by_commit[*commit].push_back(revision);
      }
      if (walk) return unreadable(refs, walk);
    }
    fs::path snapshots = repos->path() / "snapshots";
    if (!fs::is_directory(snapshots, stat_error)) continue;
    std::error_code listing;
    for (fs::directory_iterator commits(snapshots, listing), stop; !listing && commits != stop;
         commits.increment(listing)) {
      std::string commit = commits->path().filename().string();
      if (!hf::is_commit_hash(commit)) continue;
      auto& names = refs_by_commit[commit];
      std::sort(names.begin(), names.end());
      std::error_code walk;
      for (fs::recursive_directory_iterator it(commits->path(), walk), last; !walk && it != last;
           it.increment(walk)) {
        if (!it->is_regular_file(stat_error)) continue;  // follows the symlink: dangling ones drop out
        CachedFile file;
        file.repo_id = repo_id;
        file.commit = commit;
        file.refs = names;
        file.filename = it->path().lexically_relative(commits->path()).generic_string();
        file.size = it->file_size(stat_error);
        file.path = it->path();
        if (!stat_error) files.push_back(std::move(file));
      }
      if (walk) return unreadable(commits->path(), walk);
    }
    if (listing) return unreadable(snapshots, listing);
  }
  if (ec) return unreadable(hub.cache_dir, ec);
  std::sort(files.begin(), files.end(), [](const CachedFile& a, const CachedFile& b) {
    return std::tie(a.repo_id, a.commit, a.filename) < std::tie(b.repo_id, b.commit, b.filename);
  });
  return files;
}

}  // namespace isartor::inference
