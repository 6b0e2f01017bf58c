// Flat vs HNSW on synthetic 384-d sentence-embedding-like vectors (tests/vector/test_vectors.h):
// build time, single-query latency, recall against exact search, memory. Prints Markdown.
// Plain main, no Google Benchmark: each row is one build plus a few hundred timed queries.
//
//   g++ -O3 -march=native -std=c++2b -I src bench/vector_bench.cpp src/vector/*.cpp
//       -o /tmp/vector_bench -lpthread
//   /tmp/vector_bench [--sizes N,N,...] [--max-size N] [--hnsw-max N] [--queries N]
//                     [--centres N] [--intrinsic D] [--quick]
// Default sizes 1k, 10k, 100k, 1M, capped by --max-size (default 100k); --quick = 10k cap and
// 100 queries.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../tests/vector/test_vectors.h"
#include "vector/factory.h"
#include "vector/flat_index.h"
#include "vector/hnsw_index.h"
#include "vector/kernels.h"

namespace {

using namespace isartor::vector;
using Clock = std::chrono::steady_clock;

constexpr int kDims = 384;
constexpr int kEfSweep[] = {32, 64, 128, 256};

struct Options {
  std::vector<std::size_t> sizes = {1'000, 10'000, 100'000, 1'000'000};
  std::size_t max_size = 100'000;
  std::size_t hnsw_max = 100'000;  // HNSW builds above this take too long on 2 cores
  std::size_t queries = 300;
  int intrinsic = 16;
  int centres = 50;
};

struct Row {
  double build_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double recall1 = 1;
  double recall10 = 1;
  std::size_t memory = 0;
};

struct Timed {
  std::vector<std::vector<Neighbor>> results;
  double p50_us = 0;
  double p99_us = 0;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Timed run_queries(const VectorIndex& index, const testing::Vectors& queries) {
  Timed t;
  std::vector<double> us;
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const auto t0 = Clock::now();
    t.results.push_back(index.search(queries.row(q), 10));
    us.push_back(seconds_since(t0) * 1e6);
  }
  std::sort(us.begin(), us.end());
  t.p50_us = us[us.size() / 2];
  t.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  return t;
}

void score(Row& row, const Timed& got, const Timed& exact) {
  row.p50_us = got.p50_us;
  row.p99_us = got.p99_us;
  row.recall1 = row.recall10 = 0;
  const double n = static_cast<double>(got.results.size());
  for (std::size_t q = 0; q < got.results.size(); ++q) {
    const auto& g = got.results[q];
    const auto& e = exact.results[q];
    row.recall1 += (!g.empty() && !e.empty() && g[0].id == e[0].id) / n;
    row.recall10 += testing::recall(g, e) / n;
  }
}

void fill(VectorIndex& index, const testing::Vectors& data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) index.upsert(i, data.row(i));
}

void print_row(const char* kind, std::size_t n, const Row& r) {
  std::printf("| %s | %zu | %.2f | %.0f | %.0f | %.3f | %.3f | %.1f |\n", kind, n, r.build_s,
              r.p50_us, r.p99_us, r.recall1, r.recall10, r.memory / (1024.0 * 1024.0));
  std::fflush(stdout);
}

std::size_t parse_size(const char* s) { return static_cast<std::size_t>(std::atoll(s)); }

// "2000,5000,20000" -> {2000, 5000, 20000}; zero entries are dropped.
std::vector<std::size_t> parse_sizes(const std::string& list) {
  std::vector<std::size_t> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (const std::size_t n = parse_size(list.substr(start, comma - start).c_str())) {
      out.push_back(n);
    }
    start = comma + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--quick") {
      opt.max_size = 10'000;
      opt.queries = 100;
    } else if (a == "--sizes" && has_value) {
      opt.sizes = parse_sizes(argv[++i]);
      opt.max_size = opt.sizes.empty() ? 0 : opt.sizes.back();
    } else if (a == "--max-size" && has_value) {
      opt.max_size = parse_size(argv[++i]);
    } else if (a == "--hnsw-max" && has_value) {
      opt.hnsw_max = parse_size(argv[++i]);
    } else if (a == "--queries" && has_value) {
      opt.queries = std::max<std::size_t>(1, parse_size(argv[++i]));
    } else if (a == "--centres" && has_value) {
      opt.centres = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--intrinsic" && has_value) {
      opt.intrinsic = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--sizes N,N,...] [--max-size N] [--hnsw-max N] [--queries N] "
                   "[--centres N] [--intrinsic D] [--quick]\n",
                   argv[0]);
      return 2;
    }
  }

  std::vector<std::size_t> sizes;
  for (std::size_t n : opt.sizes) {
    if (n <= opt.max_size) sizes.push_back(n);
  }
  if (sizes.empty()) {
    std::fprintf(stderr, "no sizes to run\n");
    return 2;
  }

  const HnswParams params;
  std::printf("%d-d, %d centres, intrinsic dim %d, %zu queries, top-10, one thread, kernel %s\n",
              kDims, opt.centres, opt.intrinsic, opt.queries, dot_kernel_name());
  std::printf("HNSW M=%d ef_construction=%d ef_search=%d; recall is against the flat index\n\n",
              params.m, params.ef_construction, params.ef_search);
  const testing::Clusters space{.dims = kDims, .centres = opt.centres, .intrinsic = opt.intrinsic};
  const auto data = testing::sample(space, sizes.back(), 1);
  const auto queries = testing::sample(space, opt.queries, 2);

  std::printf("| index | entries | build s | p50 us | p99 us | recall@1 | recall@10 | memory MiB |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> sweep;
  for (std::size_t n : sizes) {
    FlatIndex flat(kDims, n);
    Row fr;
    auto t0 = Clock::now();
    fill(flat, data, n);
    fr.build_s = seconds_since(t0);
    fr.memory = flat.memory_bytes();
    const Timed exact = run_queries(flat, queries);
    score(fr, exact, exact);
    print_row("flat", n, fr);
    if (n > opt.hnsw_max) continue;

    HnswIndex hnsw(kDims, params, n);
    Row hr;
    t0 = Clock::now();
    fill(hnsw, data, n);
    hr.build_s = seconds_since(t0);
    hr.memory = hnsw.memory_bytes();
    score(hr, run_queries(hnsw, queries), exact);
    print_row("hnsw", n, hr);

    for (int ef : kEfSweep) {
      hnsw.set_ef_search(ef);
      Row r;
      score(r, run_queries(hnsw, queries), exact);
      char line[160];
      std::snprintf(line, sizeof line, "| %zu | %d | %.0f | %.0f | %.3f | %.3f | %.0f |", n, ef,
                    r.p50_us, r.p99_us, r.recall1, r.recall10, exact.p50_us);
      sweep.emplace_back(line);
    }
  }

  std::printf("\nHNSW ef_search sweep (flat p50 for comparison)\n\n");
  std::printf("| entries | ef_search | p50 us | p99 us | recall@1 | recall@10 | flat p50 us |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const auto& line : sweep) std::printf("%s\n", line.c_str());
  return 0;
}
