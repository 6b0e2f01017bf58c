#include "vector/hnsw_index.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "vector/kernels.h"

namespace isartor::vector {
namespace {

constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();
constexpr int kMaxLevel = 16;  // levels above log_m(n) + a few are never drawn in practice
constexpr std::size_t kMinTombstoneBatch = 16;
// Caps the write-lock stall of one consolidation: ~0.3 ms a tombstone at 100k entries
// (measured), so <= ~80 ms; the full link scan it adds per batch is ~30 ms at 1M entries.
constexpr std::size_t kMaxTombstoneBatch = 256;

void require_at_least(int value, int min, const char* what) {
  if (value < min) throw std::invalid_argument(std::string("hnsw: ") + what + " too small");
}

}  // namespace

void validate(const HnswParams& params) {
  require_at_least(params.m, 2, "m");
  require_at_least(params.ef_construction, 1, "ef_construction");
  require_at_least(params.ef_search, 1, "ef_search");
}

// Marks nodes seen by one graph walk; the epoch counter makes clearing O(1) between walks.
class HnswIndex::VisitedList {
 public:
  void start(std::size_t slots) {
    if (marks_.size() < slots) marks_.resize(slots, 0);
    if (++epoch_ == 0) {
      std::fill(marks_.begin(), marks_.end(), 0);
      epoch_ = 1;
    }
  }
  // True the first time s is seen in this walk.
  bool visit(Slot s) {
    if (marks_[s] == epoch_) return false;
    marks_[s] = epoch_;
    return true;
  }
  std::size_t bytes() const { return marks_.capacity() * sizeof(std::uint16_t); }

 private:
  std::vector<std::uint16_t> marks_;
  std::uint16_t epoch_ = 0;
};

// Borrows a VisitedList from the index's pool for the lifetime of one walk.
class HnswIndex::VisitedLease {
 public:
  explicit VisitedLease(const HnswIndex& index) : index_(index) {
    std::lock_guard lock(index_.pool_mutex_);
    if (index_.pool_.empty()) {
      list_ = std::make_unique<VisitedList>();
    } else {
      list_ = std::move(index_.pool_.back());
      index_.pool_.pop_back();
    }
  }
  ~VisitedLease() {
    std::lock_guard lock(index_.pool_mutex_);
    index_.pool_.push_back(std::move(list_));
  }
  VisitedLease(const VisitedLease&) = delete;
  VisitedLease& operator=(const VisitedLease&) = delete;
  VisitedList& list() { return *list_; }

 private:
  const HnswIndex& index_;
  std::unique_ptr<VisitedList> list_;
};

HnswIndex::HnswIndex(int dims, HnswParams params, std::size_t expected_size)
    : dims_(dims), params_(params), rng_(params.seed), entry_(kNoSlot) {
  require_positive_dims(dims);
  validate(params);
  level_mult_ = 1.0 / std::log(static_cast<double>(params.m));
  vectors_.reserve(expected_size * static_cast<std::size_t>(dims));
  links0_.reserve(expected_size * (max_links(0) + 1));
  upper_.reserve(expected_size);
  levels_.reserve(expected_size);
  states_.reserve(expected_size);
  ids_.reserve(expected_size);
  slot_of_.reserve(expected_size);
}

HnswIndex::~HnswIndex() = default;

std::size_t HnswIndex::max_links(int level) const {
  return static_cast<std::size_t>(level == 0 ? 2 * params_.m : params_.m);
}

const HnswIndex::Slot* HnswIndex::link_block(Slot s, int level) const {
  if (level == 0) return links0_.data() + std::size_t{s} * (max_links(0) + 1);
  return upper_[s].data() + static_cast<std::size_t>(level - 1) * (max_links(level) + 1);
}

HnswIndex::Slot* HnswIndex::link_block(Slot s, int level) {
  return const_cast<Slot*>(std::as_const(*this).link_block(s, level));
}

std::span<const HnswIndex::Slot> HnswIndex::neighbors(Slot s, int level) const {
  const Slot* block = link_block(s, level);
  return {block + 1, block[0]};
}

void HnswIndex::set_neighbors(Slot s, int level, std::span<const Slot> links) {
  Slot* block = link_block(s, level);
  block[0] = static_cast<Slot>(links.size());
  std::copy(links.begin(), links.end(), block + 1);
}

int HnswIndex::random_level() {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double level = -std::log(1.0 - uniform(rng_)) * level_mult_;
  return static_cast<int>(std::min(level, static_cast<double>(kMaxLevel)));
}

HnswIndex::Slot HnswIndex::allocate(int level) {
  Slot s;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
  } else {
    if (states_.size() >= kNoSlot) throw std::length_error("hnsw: too many entries");
    s = static_cast<Slot>(states_.size());
    vectors_.resize(vectors_.size() + dims_);
    links0_.resize(links0_.size() + max_links(0) + 1);
    upper_.emplace_back();
    levels_.push_back(0);
    states_.push_back(SlotState::kFree);
    ids_.push_back(0);
  }
  levels_[s] = static_cast<std::uint8_t>(level);
  link_block(s, 0)[0] = 0;
  upper_[s].assign(static_cast<std::size_t>(level) * (max_links(1) + 1), 0);
  upper_words_ += upper_[s].size();
  return s;
}

void HnswIndex::free_slot(Slot s) {
  states_[s] = SlotState::kFree;
  link_block(s, 0)[0] = 0;
  upper_words_ -= upper_[s].size();
  std::vector<Slot>().swap(upper_[s]);
  free_.push_back(s);
}

void HnswIndex::upsert(Id id, std::span<const float> vector) {
  require_dims(vector, dims_);
  std::unique_lock lock(mutex_);
  if (auto it = slot_of_.find(id); it != slot_of_.end()) remove_locked(it->second);
  insert_locked(id, vector);
}

void HnswIndex::insert_locked(Id id, std::span<const float> vector) {
  const int level = random_level();
  const Slot s = allocate(level);
  std::copy(vector.begin(), vector.end(), vectors_.begin() + std::size_t{s} * dims_);
  ids_[s] = id;
  states_[s] = SlotState::kLive;
  slot_of_[id] = s;
  if (entry_ == kNoSlot) {
    entry_ = s;
    max_level_ = level;
    return;
  }
  link(s, level);
  if (level > max_level_) {
    entry_ = s;
    max_level_ = level;
  }
}

void HnswIndex::remove(Id id) {
  std::unique_lock lock(mutex_);
  if (auto it = slot_of_.find(id); it != slot_of_.end()) remove_locked(it->second);
}

void HnswIndex::remove_locked(Slot s) {
  slot_of_.erase(ids_[s]);
  states_[s] = SlotState::kTombstone;
  ++tombstones_;
  if (slot_of_.empty()) {
    reset_graph();
  } else if (tombstones_ >= std::clamp(slot_of_.size() / 10, kMinTombstoneBatch,
                                       kMaxTombstoneBatch)) {
    consolidate();
  }
}

// Nothing live is left, so there is nothing to repair: drop every slot (capacity is kept).
void HnswIndex::reset_graph() {
  vectors_.clear();
  links0_.clear();
  upper_.clear();
  upper_words_ = 0;
  levels_.clear();
  states_.clear();
  ids_.clear();
  free_.clear();
  tombstones_ = 0;
  entry_ = kNoSlot;
  max_level_ = -1;
}

void HnswIndex::consolidate() {
  const auto slots = static_cast<Slot>(states_.size());
  auto live = [&](Slot s) { return states_[s] == SlotState::kLive; };

  // Replace each link to a tombstone by the best of the tombstone's own live links.
  std::vector<Slot> pool;
  std::vector<Scored> scored;
  for (int level = 0; level <= max_level_; ++level) {
    for (Slot s = 0; s < slots; ++s) {
      if (!live(s) || levels_[s] < level) continue;
      const auto links = neighbors(s, level);
      if (std::all_of(links.begin(), links.end(), live)) continue;
      pool.clear();
      for (Slot x : links) {
        if (live(x)) {
          pool.push_back(x);
          continue;
        }
        for (Slot y : neighbors(x, level)) {
          if (y != s && live(y)) pool.push_back(y);
        }
      }
      std::sort(pool.begin(), pool.end());
      pool.erase(std::unique(pool.begin(), pool.end()), pool.end());
      if (pool.size() <= max_links(level)) {
        set_neighbors(s, level, pool);
        continue;
      }
      scored.clear();
      for (Slot x : pool) scored.push_back({dot(vec(s), vec(x), dims_), x});
      set_neighbors(s, level, select_neighbors(scored, max_links(level)));
    }
  }

  // A live node without layer-0 in-links from live nodes cannot be reached by any search.
  std::vector<std::uint8_t> orphan(slots, 0);
  for (Slot s = 0; s < slots; ++s) orphan[s] = live(s);
  for (Slot s = 0; s < slots; ++s) {
    if (!live(s)) continue;
    for (Slot y : neighbors(s, 0)) orphan[y] = 0;
  }

  for (Slot t = 0; t < slots; ++t) {
    if (states_[t] == SlotState::kTombstone) free_slot(t);
  }
  tombstones_ = 0;
  if (!live(entry_)) pick_entry();
  for (Slot s = 0; s < slots; ++s) {
    if (orphan[s] && s != entry_) link(s, levels_[s]);
  }
}

void HnswIndex::pick_entry() {
  entry_ = kNoSlot;
  max_level_ = -1;
  for (Slot s = 0; s < states_.size(); ++s) {
    if (states_[s] == SlotState::kLive && levels_[s] > max_level_) {
      entry_ = s;
      max_level_ = levels_[s];
    }
  }
}

void HnswIndex::link(Slot s, int level) {
  const float* q = vec(s);
  Scored ep = descend(q, level);
  VisitedLease visited(*this);
  for (int l = std::min(level, max_level_); l >= 0; --l) {
    auto found = search_layer(q, ep, static_cast<std::size_t>(params_.ef_construction), l,
                              visited.list());
    std::erase_if(found, [s](const Scored& c) { return c.slot == s; });
    if (found.empty()) continue;
    ep = *std::max_element(found.begin(), found.end(),
                           [](const Scored& a, const Scored& b) { return a.score < b.score; });
    const auto chosen = select_neighbors(std::move(found), static_cast<std::size_t>(params_.m));
    set_neighbors(s, l, chosen);
    for (Slot c : chosen) add_link(c, s, l);
  }
}

void HnswIndex::add_link(Slot from, Slot to, int level) {
  const auto links = neighbors(from, level);
  if (std::find(links.begin(), links.end(), to) != links.end()) return;
  if (links.size() < max_links(level)) {
    Slot* block = link_block(from, level);
    block[1 + block[0]++] = to;
    return;
  }
  std::vector<Scored> candidates;
  candidates.reserve(links.size() + 1);
  for (Slot x : links) candidates.push_back({dot(vec(from), vec(x), dims_), x});
  candidates.push_back({dot(vec(from), vec(to), dims_), to});
  set_neighbors(from, level, select_neighbors(std::move(candidates), max_links(level)));
}

// The paper's heuristic: take candidates best first, but skip one that is closer to an already
// chosen neighbour than to the base node, so links spread over directions instead of clumping.
std::vector<HnswIndex::Slot> HnswIndex::select_neighbors(std::vector<Scored> candidates,
                                                         std::size_t m) const {
  std::sort(candidates.begin(), candidates.end(),
            [](const Scored& a, const Scored& b) { return a.score > b.score; });
  std::vector<Slot> chosen;
  chosen.reserve(m);
  if (candidates.size() <= m) {  // room for all: pruning would only lose links
    for (const Scored& c : candidates) chosen.push_back(c.slot);
    return chosen;
  }
  for (const Scored& c : candidates) {
    if (chosen.size() >= m) break;
    const bool diverse = std::none_of(chosen.begin(), chosen.end(), [&](Slot r) {
      return dot(vec(c.slot), vec(r), dims_) > c.score;
    });
    if (diverse) chosen.push_back(c.slot);
  }
  return chosen;
}

HnswIndex::Scored HnswIndex::descend(const float* q, int to_level) const {
  Scored ep{dot(q, vec(entry_), dims_), entry_};
  for (int l = max_level_; l > to_level; --l) ep = greedy(q, ep, l);
  return ep;
}

HnswIndex::Scored HnswIndex::greedy(const float* q, Scored cur, int level) const {
  for (bool moved = true; moved;) {
    moved = false;
    for (Slot n : neighbors(cur.slot, level)) {
      const float score = dot(q, vec(n), dims_);
      if (score > cur.score) {
        cur = {score, n};
        moved = true;
      }
    }
  }
  return cur;
}

// Best-first walk keeping the ef best live nodes. Tombstones are walked through (they still
// connect the graph) but never kept; while any exist the walk only stops once ef are kept.
std::vector<HnswIndex::Scored> HnswIndex::search_layer(const float* q, Scored entry,
                                                       std::size_t ef, int level,
                                                       VisitedList& visited) const {
  auto best_on_top = [](const Scored& a, const Scored& b) { return a.score < b.score; };
  auto worst_on_top = [](const Scored& a, const Scored& b) { return a.score > b.score; };
  std::vector<Scored> frontier{entry};
  std::vector<Scored> kept;
  visited.start(states_.size());
  visited.visit(entry.slot);
  if (states_[entry.slot] == SlotState::kLive) kept.push_back(entry);

  while (!frontier.empty()) {
    const Scored c = frontier.front();
    if (!kept.empty() && c.score < kept.front().score &&
        (kept.size() >= ef || tombstones_ == 0)) {
      break;
    }
    std::pop_heap(frontier.begin(), frontier.end(), best_on_top);
    frontier.pop_back();
    for (Slot n : neighbors(c.slot, level)) {
      if (!visited.visit(n)) continue;
      const float score = dot(q, vec(n), dims_);
      if (kept.size() >= ef && score <= kept.front().score) continue;
      frontier.push_back({score, n});
      std::push_heap(frontier.begin(), frontier.end(), best_on_top);
      if (states_[n] != SlotState::kLive) continue;
      kept.push_back({score, n});
      std::push_heap(kept.begin(), kept.end(), worst_on_top);
      if (kept.size() > ef) {
        std::pop_heap(kept.begin(), kept.end(), worst_on_top);
        kept.pop_back();
      }
    }
  }
  return kept;
}

std::vector<Neighbor> HnswIndex::search(std::span<const float> query, int k) const {
  require_dims(query, dims_);
  if (k <= 0) return {};
  std::shared_lock lock(mutex_);
  if (entry_ == kNoSlot) return {};
  const Scored ep = descend(query.data(), 0);
  VisitedLease visited(*this);
  const std::size_t ef = std::max(params_.ef_search, k);
  const auto found = search_layer(query.data(), ep, ef, 0, visited.list());
  TopK top(static_cast<std::size_t>(k));
  for (const Scored& f : found) top.push(ids_[f.slot], f.score);
  return top.take_sorted();
}

std::size_t HnswIndex::size() const {
  std::shared_lock lock(mutex_);
  return slot_of_.size();
}

std::size_t HnswIndex::tombstones() const {
  std::shared_lock lock(mutex_);
  return tombstones_;
}

void HnswIndex::set_ef_search(int ef) {
  require_at_least(ef, 1, "ef_search");
  std::unique_lock lock(mutex_);
  params_.ef_search = ef;
}

std::size_t HnswIndex::memory_bytes() const {
  std::shared_lock lock(mutex_);
  std::size_t bytes = vectors_.capacity() * sizeof(float) + links0_.capacity() * sizeof(Slot) +
                      upper_.capacity() * sizeof(std::vector<Slot>) +
                      upper_words_ * sizeof(Slot) + levels_.capacity() +
                      states_.capacity() * sizeof(SlotState) + ids_.capacity() * sizeof(Id) +
                      free_.capacity() * sizeof(Slot) + map_bytes(slot_of_);
  std::lock_guard pool_lock(pool_mutex_);
  for (const auto& list : pool_) bytes += list->bytes();
  return bytes;
}

}  // namespace isartor::vector

