#pragma once
// Approximate nearest-neighbour search: a hierarchical navigable small world graph
// (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using HNSW
// graphs", 2018), with the paper's neighbour-selection heuristic (its Algorithm 4).
//
// Deletes: remove() tombstones the slot (still walked through, never returned). Once the
// tombstones reach a batch (10 % of the live entries, clamped to [16, 256]) they are
// consolidated as in FreshDiskANN (Singh et al., 2021): every live node that links a tombstone
// re-selects its links from its live links plus the tombstones' live links, nodes left without
// any incoming layer-0 link are re-inserted, and the tombstoned slots go to a free list that the
// next inserts reuse. So the slot count never exceeds the peak live size plus one batch, however
// long the insert/evict churn runs; removing the last entry resets the graph. upsert() of an
// existing id is remove + insert.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "vector/rw_mutex.h"
#include "vector/vector_index.h"

namespace isartor::vector {

struct HnswParams {
  int m = 16;                  // links per node on the upper layers; layer 0 keeps 2 * m
  int ef_construction = 200;   // candidate list size while inserting (graph quality)
  int ef_search = 128;         // candidate list size while searching, raised to k if smaller
  std::uint64_t seed = 0x5eed; // level generator: the same inserts build the same graph
};

// Throws std::invalid_argument if m < 2 or an ef < 1. Thread-safe (pure).
void validate(const HnswParams& params);

class HnswIndex final : public VectorIndex {
 public:
  // Throws std::invalid_argument if dims <= 0 or validate(params) does. expected_size
  // pre-reserves memory.
  explicit HnswIndex(int dims, HnswParams params = {}, std::size_t expected_size = 0);
  ~HnswIndex() override;

  int dimensions() const override { return dims_; }
  // Throws std::invalid_argument on a wrong-sized vector.
  void upsert(Id id, std::span<const float> vector) override;
  // May run a consolidation (see above) inside the exclusive lock. No-op for an unknown id.
  void remove(Id id) override;
  // Approximate top-k, best first; never returns a removed id; none for k <= 0.
  // Throws std::invalid_argument on a wrong-sized query.
  std::vector<Neighbor> search(std::span<const float> query, int k) const override;
  std::size_t size() const override;
  std::size_t memory_bytes() const override;

  // Changes the search breadth (recall vs latency). Throws std::invalid_argument if ef < 1.
  // Thread-safe (takes the write lock).
  void set_ef_search(int ef);
  // Removed entries whose slots are not reclaimed yet. Thread-safe.
  std::size_t tombstones() const;

 private:
  using Slot = std::uint32_t;
  enum class SlotState : std::uint8_t { kLive, kTombstone, kFree };
  struct Scored {
    float score;
    Slot slot;
  };
  class VisitedList;
  class VisitedLease;

  const float* vec(Slot s) const { return vectors_.data() + std::size_t{s} * dims_; }
  std::size_t max_links(int level) const;
  const Slot* link_block(Slot s, int level) const;  // [count, links...]
  Slot* link_block(Slot s, int level);
  std::span<const Slot> neighbors(Slot s, int level) const;
  void set_neighbors(Slot s, int level, std::span<const Slot> links);

  int random_level();
  Slot allocate(int level);
  void free_slot(Slot s);
  void insert_locked(Id id, std::span<const float> vector);
  void remove_locked(Slot s);
  void reset_graph();
  void consolidate();
  void pick_entry();

  // Connects slot s (already holding its vector) at levels [0, level] to the graph.
  void link(Slot s, int level);
  void add_link(Slot from, Slot to, int level);
  std::vector<Slot> select_neighbors(std::vector<Scored> candidates, std::size_t m) const;
  Scored descend(const float* q, int to_level) const;
  Scored greedy(const float* q, Scored cur, int level) const;
  std::vector<Scored> search_layer(const float* q, Scored entry, std::size_t ef, int level,
                                   VisitedList& visited) const;

  const int dims_;
  mutable RwMutex mutex_;
  HnswParams params_;
  double level_mult_;
  std::mt19937_64 rng_;

  std::vector<float> vectors_;            // slot s at [s * dims_, (s + 1) * dims_)
  std::vector<Slot> links0_;              // slot s: [count, 2m links] at s * (2m + 1)
  std::vector<std::vector<Slot>> upper_;  // slot s: levels 1..level(s), each [count, m links]
  std::size_t upper_words_ = 0;           // sum of upper_[s].size(), for memory_bytes()
  std::vector<std::uint8_t> levels_;
  std::vector<SlotState> states_;
  std::vector<Id> ids_;
  std::vector<Slot> free_;
  std::unordered_map<Id, Slot> slot_of_;  // live entries only
  std::size_t tombstones_ = 0;
  Slot entry_;
  int max_level_ = -1;

  // Per-search visited marks, pooled so concurrent searches never share one.
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<VisitedList>> pool_;
};

}  // namespace isartor::vector
