// Per-class sums and second-moment (Gram / scatter) matrices, accumulated over float64 row blocks with symmetric
// rank-k updates (OpenBLAS dsyrk when SciPy's is available, else Eigen with one accumulator per thread).
#pragma once

#include "blas.hpp"
#include "common.hpp"

namespace pedrank {

// Per-class feature sums (C x D).
template <typename T>
RowMat class_sums(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes) {
  const int nt = segment_threads();
  std::vector<RowMat> parts(nt);
  for_row_blocks(X.n, block_rows(X.d), [&](int t, Index r0, Index nb) {
    RowMat block;
    X.load_rows(r0, nb, block);
    RowMat& acc = parts[t];
    if (acc.size() == 0) acc = RowMat::Zero(n_classes, X.d);
    for (Index i = 0; i < nb; ++i) acc.row(labels[r0 + i]) += block.row(i);
  });
  RowMat sums = RowMat::Zero(n_classes, X.d);
  for (auto& part : parts)
    if (part.size() != 0) sums += part;
  return sums;
}

inline RowMat means_from_sums(const RowMat& sums, const IVec& counts) {
  RowMat means = sums;
  for (Index c = 0; c < sums.rows(); ++c)
    if (counts[c] > 0) means.row(c) /= static_cast<double>(counts[c]);
  return means;
}

inline Vec mean_from_sums(const RowMat& sums, Index n) {
  return (sums.colwise().sum() / static_cast<double>(n)).transpose();
}

// sum_i r_i r_i^T over the rows r_i of prepare(r0, rows) (rows: a float64 view of X's rows r0.., transformed in
// place). prepare may be called on any sub-range of rows, from several threads. Returns the full D x D matrix.
template <typename T, typename Prepare>
Mat gram_pass(const FeatureView<T>& X, Prepare&& prepare) {
  const Index D = X.d;
  Mat gram = Mat::Zero(D, D);
  if (linalg().use_syrk(D, X.n)) {
    // BLAS threads itself; our threads would only spin against its workers, so blocks are filled by this thread.
    const Index bs = std::clamp<Index>((Index(1) << 20) / std::max<Index>(D, 1), 256, 8192);
    RowMat block;
    for (Index r0 = 0; r0 < X.n; r0 += bs) {
      const Index nb = std::min(bs, X.n - r0);
      block.resize(nb, D);
      auto rows = block.middleRows(0, nb);
      X.load_rows(r0, nb, rows);
      prepare(r0, rows);
      syrk_lower(gram, block.data(), D, nb, D);  // row-major nb x D == col-major D x nb
    }
  } else {
    const int nt = segment_threads();
    std::vector<Mat> parts(nt);
    for_row_blocks(X.n, block_rows(D), [&](int t, Index r0, Index nb) {
      RowMat block(nb, D);
      X.load_rows(r0, nb, block);
      auto rows = block.middleRows(0, nb);
      prepare(r0, rows);
      Mat& acc = parts[t];
      if (acc.size() == 0) acc = Mat::Zero(D, D);
      acc.selfadjointView<Eigen::Lower>().rankUpdate(block.transpose());
    });
    for (auto& part : parts)
      if (part.size() != 0) gram += part;
  }
  return gram.selfadjointView<Eigen::Lower>();
}

// X^T X, uncentred.
template <typename T>
Mat gram(const FeatureView<T>& X) {
  return gram_pass(X, [](Index, auto&) {});
}

// sum_i (x_i - m_{y_i})(x_i - m_{y_i})^T: N times the within-class scatter, given class means m.
template <typename T>
Mat within_scatter(const FeatureView<T>& X, const std::int64_t* labels, const RowMat& means) {
  return gram_pass(X, [&](Index r0, auto& rows) {
    for (Index i = 0; i < rows.rows(); ++i) rows.row(i) -= means.row(labels[r0 + i]);
  });
}

// Population covariance (divide by N) of the rows, centred by mean first.
template <typename T>
Mat centred_covariance(const FeatureView<T>& X, const Vec& mean) {
  const Eigen::RowVectorXd m = mean.transpose();
  Mat cov = gram_pass(X, [&](Index, auto& rows) { rows.rowwise() -= m; });
  cov /= static_cast<double>(X.n);
  return cov;
}

// X X^T (N x N), accumulated over column blocks (used when N <= D).
template <typename T>
Mat row_gram(const FeatureView<T>& X) {
  const Index bs = std::clamp<Index>((Index(1) << 19) / std::max<Index>(X.n, 1), 16, 4096);
  Mat g = Mat::Zero(X.n, X.n);
  if (linalg().use_syrk(X.n, X.d)) {
    Mat block;
    for (Index c0 = 0; c0 < X.d; c0 += bs) {
      const Index nc = std::min(bs, X.d - c0);
      X.load_cols(c0, nc, block);
      syrk_lower(g, block.data(), X.n, nc, X.n);
    }
  } else {
    // Column blocks cut into fixed runs, one accumulator per run, summed in run order: deterministic.
    const Index nblocks = (X.d + bs - 1) / bs;
    const Index nseg = std::max<Index>(1, std::min<Index>(nblocks, segment_threads()));
    std::vector<Mat> parts(nseg);
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(std::min<Index>(nseg, max_threads())))
#endif
    for (Index s = 0; s < nseg; ++s) {
      Mat block;
      for (Index b = s * nblocks / nseg; b < (s + 1) * nblocks / nseg; ++b) {
        const Index c0 = b * bs;
        X.load_cols(c0, std::min(bs, X.d - c0), block);
        Mat& acc = parts[s];
        if (acc.size() == 0) acc = Mat::Zero(X.n, X.n);
        acc.selfadjointView<Eigen::Lower>().rankUpdate(block);
      }
    }
    for (auto& part : parts)
      if (part.size() != 0) g += part;
  }
  return g.selfadjointView<Eigen::Lower>();
}

// X^T A for A with N rows (D x K), over row blocks.
template <typename T>
Mat transpose_times(const FeatureView<T>& X, const Mat& A) {
  const int nt = segment_threads();
  std::vector<Mat> parts(nt);
  for_row_blocks(X.n, block_rows(X.d), [&](int t, Index r0, Index nb) {
    RowMat block;
    X.load_rows(r0, nb, block);
    if (parts[t].size() == 0) parts[t] = Mat::Zero(X.d, A.cols());
    parts[t].noalias() += block.transpose() * A.middleRows(r0, nb);
  });
  Mat out = Mat::Zero(X.d, A.cols());
  for (auto& part : parts)
    if (part.size() != 0) out += part;
  return out;
}

}  // namespace pedrank
