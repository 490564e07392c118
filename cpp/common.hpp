// Shared plumbing for the pedrank kernels: a read-only strided view of the caller's feature matrix (float32 or
// float64, any non-negative strides, never copied as a whole), conversion of row blocks to float64, and the
// OpenMP loop over row blocks with one accumulator per segment of blocks (deterministic reduction order).
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pedrank {

using Index = Eigen::Index;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using IVec = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

// Cap on our own OpenMP threads for the calling thread (0 = none). Kernels that hand their heavy products to
// OpenBLAS run their own loops on one thread: OpenBLAS's workers and ours spin-wait against each other otherwise
// (measured: GBC 3.7 s with OMP_NUM_THREADS=1 against 9 to 22 s with both pools on 2 cores).
inline int& thread_cap() {
  thread_local int cap = 0;
  return cap;
}

// Threads the current kernel call may use (threads.hpp's policy, set once per call; 0 = not set).
inline int& call_budget() {
  thread_local int budget = 0;
  return budget;
}

inline int max_threads() {
#ifdef _OPENMP
  int n = std::max(1, omp_get_max_threads());
  if (call_budget() > 0) n = std::min(n, call_budget());
  return thread_cap() > 0 ? std::min(n, thread_cap()) : n;
#else
  return 1;
#endif
}

// While alive, our loops run on the calling thread only (if serial is true).
class SerialScope {
 public:
  explicit SerialScope(bool serial) : saved_(thread_cap()) {
    if (serial) thread_cap() = 1;
  }
  ~SerialScope() { thread_cap() = saved_; }
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int saved_;
};

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Features as the caller laid them out; strides are in elements.
template <typename T>
struct FeatureView {
  const T* data = nullptr;
  Index n = 0;
  Index d = 0;
  Index row_stride = 0;
  Index col_stride = 0;

  // rows [r0, r0 + nb) as float64 into out (nb x d, already sized)
  void load_rows(Index r0, Index nb, Eigen::Ref<RowMat> out) const {
    if (col_stride == 1) {
      using Rows = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                              Eigen::OuterStride<>>;
      Rows rows(data + r0 * row_stride, nb, d, Eigen::OuterStride<>(row_stride));
      out = rows.template cast<double>();
    } else if (row_stride == 1) {
      using Cols = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>, 0,
                              Eigen::OuterStride<>>;
      Cols cols(data + r0, nb, d, Eigen::OuterStride<>(col_stride));
      out = cols.template cast<double>();
    } else {
      for (Index i = 0; i < nb; ++i) {
        const T* row = data + (r0 + i) * row_stride;
        for (Index j = 0; j < d; ++j) out(i, j) = static_cast<double>(row[j * col_stride]);
      }
    }
  }

  void load_rows(Index r0, Index nb, RowMat& out) const {
    out.resize(nb, d);
    load_rows(r0, nb, Eigen::Ref<RowMat>(out));
  }

  // columns [c0, c0 + nc) as float64 (n x nc)
  void load_cols(Index c0, Index nc, Mat& out) const {
    out.resize(n, nc);
    for (Index j = 0; j < nc; ++j)
      for (Index i = 0; i < n; ++i) out(i, j) = static_cast<double>(data[i * row_stride + (c0 + j) * col_stride]);
  }
};

// Rows per block: about 4 MiB of float64 per block, enough inner dimension for an efficient rank-k update.
inline Index block_rows(Index d) {
  const Index target = (Index(1) << 19) / std::max<Index>(d, 1);
  return std::clamp<Index>(target, 64, 4096);
}

// Threads the work is cut for: OpenMP's count, capped by SerialScope (which depends on sizes only), but not by the
// per-call budget, which depends on the machine's load. Segments and accumulators are sized by this, and the
// budget's threads run them, so a call gives the same bits whatever the load.
inline int segment_threads() {
#ifdef _OPENMP
  const int n = std::max(1, omp_get_max_threads());
  return thread_cap() > 0 ? std::min(n, thread_cap()) : n;
#else
  return 1;
#endif
}

// Number of accumulators for_row_blocks uses (one per segment of consecutive blocks); size per-segment
// accumulators with segment_threads(), which is never smaller.
inline Index row_segments(Index n, Index bs) {
  const Index nblocks = (n + bs - 1) / bs;
  return std::max<Index>(1, std::min<Index>(nblocks, segment_threads()));
}

// Calls body(segment, r0, nb) for every row block. The blocks are cut into row_segments() runs of consecutive
// blocks; each run is visited in block order by one thread, into its own accumulator (index segment). The cut
// depends only on n, bs and segment_threads(), never on scheduling or on how many threads the call's budget runs,
// so reducing the accumulators in segment order gives bitwise identical results from run to run.
template <typename Body>
void for_row_blocks(Index n, Index bs, Body&& body) {
  const Index nblocks = (n + bs - 1) / bs;
  if (nblocks <= 1) {
    if (n > 0) body(0, Index(0), n);
    return;
  }
  const Index nseg = row_segments(n, bs);
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(std::min<Index>(nseg, max_threads())))
#endif
  for (Index s = 0; s < nseg; ++s) {
    const Index b0 = s * nblocks / nseg, b1 = (s + 1) * nblocks / nseg;
    for (Index b = b0; b < b1; ++b) {
      const Index r0 = b * bs;
      body(static_cast<int>(s), r0, std::min(bs, n - r0));
    }
  }
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// Labels must be 0..C-1; returns the class counts.
inline IVec count_labels(const std::int64_t* labels, Index n, Index n_classes) {
  require(n_classes >= 1, "n_classes must be >= 1, got " + std::to_string(n_classes));
  IVec counts = IVec::Zero(n_classes);
  for (Index i = 0; i < n; ++i) {
    const std::int64_t c = labels[i];
    if (c < 0 || c >= n_classes)
      throw std::invalid_argument("labels must lie in [0, " + std::to_string(n_classes) + "), found " +
                                  std::to_string(c) + " at index " + std::to_string(i));
    ++counts[c];
  }
  return counts;
}

inline void require_all_present(const IVec& counts) {
  for (Index c = 0; c < counts.size(); ++c)
    if (counts[c] == 0)
      throw std::invalid_argument("every class 0..n_classes-1 must have at least one sample; class " +
                                  std::to_string(c) + " has none");
}

// Sum of per-segment accumulators, in segment order (empty ones skipped) into the first one.
template <typename M>
M reduce_sum(std::vector<M>& parts) {
  for (std::size_t t = 1; t < parts.size(); ++t)
    if (parts[t].size() != 0) parts[0] += parts[t];
  return std::move(parts[0]);
}

}  // namespace pedrank
