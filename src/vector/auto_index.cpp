#include "vector/auto_index.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <utility>

#include "vector/kernels.h"

namespace isartor::vector {

AutoIndex::AutoIndex(int dims, std::size_t threshold, HnswParams params,
                     std::size_t expected_size)
    : dims_(dims),
      threshold_(threshold),
      params_(params),
      flat_(std::make_unique<FlatIndex>(dims, std::min(expected_size, threshold))) {
  if (threshold == 0) throw std::invalid_argument("auto index: threshold must be positive");
  validate(params);
}

AutoIndex::~AutoIndex() {
  stop_ = true;
  if (builder_.joinable()) builder_.join();
}

void AutoIndex::upsert(Id id, std::span<const float> vector) {
  require_dims(vector, dims_);
  std::unique_lock lock(mutex_);
  if (!flat_) {
    hnsw_->upsert(id, vector);
    return;
  }
  flat_->upsert(id, vector);
  if (hnsw_) {
    hnsw_->upsert(id, vector);
    written_.insert(id);
  } else if (flat_->size() >= threshold_) {
    hnsw_ = std::make_unique<HnswIndex>(dims_, params_, 2 * flat_->size());
    builder_ = std::thread(&AutoIndex::migrate, this, flat_->snapshot());
  }
}

void AutoIndex::remove(Id id) {
  std::unique_lock lock(mutex_);
  if (!flat_) {
    hnsw_->remove(id);
    return;
  }
  flat_->remove(id);
  if (hnsw_) {
    hnsw_->remove(id);
    written_.insert(id);
  }
}

// Holding the shared lock per insert keeps a writer from slipping in between the written_
// check and the insert (which would let a stale snapshot row overwrite a newer vector).
void AutoIndex::migrate(FlatIndex::Snapshot snapshot) {
  for (std::size_t i = 0; i < snapshot.ids.size(); ++i) {
    if (stop_) return;
    std::shared_lock lock(mutex_);
    if (written_.contains(snapshot.ids[i])) continue;
    hnsw_->upsert(snapshot.ids[i],
                  std::span<const float>(snapshot.rows).subspan(i * dims_, dims_));
  }
  {
    std::unique_lock lock(mutex_);
    flat_.reset();
    std::unordered_set<Id>().swap(written_);
  }
  migrated_.notify_all();
}

std::vector<Neighbor> AutoIndex::search(std::span<const float> query, int k) const {
  std::shared_lock lock(mutex_);
  return flat_ ? flat_->search(query, k) : hnsw_->search(query, k);
}

std::size_t AutoIndex::size() const {
  std::shared_lock lock(mutex_);
  return flat_ ? flat_->size() : hnsw_->size();
}

std::size_t AutoIndex::memory_bytes() const {
  std::shared_lock lock(mutex_);
  return (flat_ ? flat_->memory_bytes() : 0) + (hnsw_ ? hnsw_->memory_bytes() : 0) +
         written_.bucket_count() * sizeof(void*) + written_.size() * 2 * sizeof(void*);
}

IndexKind AutoIndex::active_kind() const {
  std::shared_lock lock(mutex_);
  return flat_ ? IndexKind::kFlat : IndexKind::kHnsw;
}

void AutoIndex::wait_for_migration() const {
  std::shared_lock lock(mutex_);
  migrated_.wait(lock, [this] { return !flat_ || !hnsw_; });
}

}  // namespace isartor::vector
