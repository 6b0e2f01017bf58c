#include "inference/hf_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include <fmt/format.h>

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

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  std::ostringstream out;
  out << '.' << ::getpid() << '.' << std::this_thread::get_id() << '.' << counter++;
  return out.str();
}

}  // namespace isartor::inference::hf
