#include "vector/flat_index.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "vector/kernels.h"

namespace isartor::vector {

FlatIndex::FlatIndex(int dims, std::size_t expected_size) : dims_(dims) {
  require_positive_dims(dims);
  rows_.reserve(expected_size * static_cast<std::size_t>(dims));
  ids_.reserve(expected_size);
  row_of_.reserve(expected_size);
}

void FlatIndex::upsert(Id id, std::span<const float> vector) {
  require_dims(vector, dims_);
  std::unique_lock lock(mutex_);
  auto [it, inserted] = row_of_.try_emplace(id, ids_.size());
  if (inserted) {
    rows_.insert(rows_.end(), vector.begin(), vector.end());
    ids_.push_back(id);
  } else {
    std::copy(vector.begin(), vector.end(), rows_.begin() + it->second * dims_);
  }
}

void FlatIndex::remove(Id id) {
  std::unique_lock lock(mutex_);
  auto it = row_of_.find(id);
  if (it == row_of_.end()) return;
  const std::size_t row = it->second;
  const std::size_t last = ids_.size() - 1;
  row_of_.erase(it);
  if (row != last) {
    std::copy_n(rows_.begin() + last * dims_, dims_, rows_.begin() + row * dims_);
    ids_[row] = ids_[last];
    row_of_[ids_[row]] = row;
  }
  rows_.resize(last * dims_);
  ids_.pop_back();
}

std::vector<Neighbor> FlatIndex::search(std::span<const float> query, int k) const {
  require_dims(query, dims_);
  if (k <= 0) return {};
  std::shared_lock lock(mutex_);
  TopK top(std::min(static_cast<std::size_t>(k), ids_.size()));
  const float* row = rows_.data();
  for (std::size_t r = 0; r < ids_.size(); ++r, row += dims_) {
    const float score = dot(query.data(), row, dims_);
    if (top.admits(score)) top.push(ids_[r], score);
  }
  return top.take_sorted();
}

std::size_t FlatIndex::size() const {
  std::shared_lock lock(mutex_);
  return ids_.size();
}

std::size_t FlatIndex::memory_bytes() const {
  std::shared_lock lock(mutex_);
  return rows_.capacity() * sizeof(float) + ids_.capacity() * sizeof(Id) + map_bytes(row_of_);
}

FlatIndex::Snapshot FlatIndex::snapshot() const {
  std::shared_lock lock(mutex_);
  return {ids_, rows_};
}

}  // namespace isartor::vector
