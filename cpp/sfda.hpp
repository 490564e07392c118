// SFDA (Shao et al. 2022): shrinkage LDA, ConfMix, shrinkage LDA again.
//
// The authors solve the generalised eigenproblem Sb v = l Sw' v and form coef = M V V^T; with V^T Sw' V = I that
// is M Sw'^-1, so a Cholesky solve replaces the eigensolver and the total scatter St is never needed. The
// within-class scatter is one rank-k pass over rows centred by their own class mean (a one-sample class adds 0).
// ConfMix is applied block by block inside the second pass: no N x D copy of the mixed features exists.
#pragma once

#include <cmath>
#include <limits>

#include "constants.hpp"
#include "scatter.hpp"

namespace pedrank {

struct LdaFit {
  RowMat coef;  // C x D
  Vec intercept;
  double shrinkage = 0.0;
};

namespace detail {

// Largest eigenvalue of Sw by the authors' three rounds of power iteration started from the row sums.
inline double power_iteration_lmax(const Mat& Sw) {
  Vec v = Sw.rowwise().sum();
  Vec w = v;
  for (int round = 0; round < constants::SFDA_POWER_ROUNDS; ++round) {
    w = Sw * v;
    const double nw = w.norm();
    if (!(nw > 0.0)) return 0.0;  // Sw v = 0: no spread to estimate (the authors divide by 0 here)
    w /= nw;
    v = Sw * w;
    const double nv = v.norm();
    if (!(nv > 0.0)) return 0.0;
    v /= nv;
  }
  return v.dot(Sw * w);
}

inline double adaptive_shrinkage(const Mat& Sw) {
  return std::max(std::exp(-5.0 * power_iteration_lmax(Sw)), constants::SFDA_MIN_SHRINKAGE);
}

// C (m x n) += alpha op(A) op(B), all column-major blocks inside larger matrices (leading dimensions given).
inline void gemm_update(char ta, Index m, Index n, Index k, double alpha, const double* a, Index lda, const double* b,
                        Index ldb, double* c, Index ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  char tb = 'N';
  int m_ = static_cast<int>(m), n_ = static_cast<int>(n), k_ = static_cast<int>(k), lda_ = static_cast<int>(lda),
      ldb_ = static_cast<int>(ldb), ldc_ = static_cast<int>(ldc);
  double beta = 1.0;
  linalg().dgemm(&ta, &tb, &m_, &n_, &k_, &alpha, const_cast<double*>(a), &lda_, const_cast<double*>(b), &ldb_, &beta,
                 c, &ldc_);
}

// solved = A^-1 rhs for symmetric positive definite A by a right-looking blocked Cholesky whose trailing updates and
// triangular-solve updates go to OpenBLAS (Eigen's own LLT runs unvectorised-for-AVX on one core: ~0.3 s at
// D = 2048 against a few hundredths here). Returns false (solved untouched) when BLAS is off or too small to pay,
// or when a pivot is not positive: the caller then takes Eigen's LLT / LDLT path on the untouched A.
inline bool blocked_cholesky_solve(const Mat& A, const Mat& rhs, Mat& solved) {
  const Index D = A.rows(), C = rhs.cols();
  Linalg& la = linalg();
  if (!(la.enabled && la.dgemm != nullptr && la.dsyrk != nullptr && D >= 512 && fits_int(D) && fits_int(C)))
    return false;
  constexpr Index kBlock = 128;
  Mat L = A;
  for (Index k = 0; k < D; k += kBlock) {
    const Index kb = std::min(kBlock, D - k), rest = D - k - kb;
    Eigen::LLT<Mat> diag(L.block(k, k, kb, kb));
    if (diag.info() != Eigen::Success) return false;
    L.block(k, k, kb, kb) = diag.matrixL();
    if (rest == 0) break;
    auto below = L.block(k + kb, k, rest, kb);
    // below <- below L11^-T
    L.block(k, k, kb, kb).triangularView<Eigen::Lower>().transpose().solveInPlace<Eigen::OnTheRight>(below);
    char uplo = 'L', trans = 'N';
    int n_ = static_cast<int>(rest), k_ = static_cast<int>(kb), ld = static_cast<int>(D);
    double minus_one = -1.0, one = 1.0;
    la.dsyrk(&uplo, &trans, &n_, &k_, &minus_one, L.data() + (k + kb) + k * D, &ld, &one,
             L.data() + (k + kb) + (k + kb) * D, &ld);
  }
  Mat x = rhs;
  // forward: L y = rhs
  for (Index k = 0; k < D; k += kBlock) {
    const Index kb = std::min(kBlock, D - k), rest = D - k - kb;
    L.block(k, k, kb, kb).triangularView<Eigen::Lower>().solveInPlace(x.middleRows(k, kb));
    gemm_update('N', rest, C, kb, -1.0, L.data() + (k + kb) + k * D, D, x.data() + k, D, x.data() + k + kb, D);
  }
  // backward: L^T x = y
  const Index last = ((D - 1) / kBlock) * kBlock;
  for (Index k = last; k >= 0; k -= kBlock) {
    const Index kb = std::min(kBlock, D - k), rest = D - k - kb;
    gemm_update('T', kb, C, rest, -1.0, L.data() + (k + kb) + k * D, D, x.data() + k + kb, D, x.data() + k, D);
    L.block(k, k, kb, kb).triangularView<Eigen::Lower>().transpose().solveInPlace(x.middleRows(k, kb));
  }
  solved = std::move(x);
  return true;
}

// coef = M Sw'^-1, intercept_c = -1/2 m_c . coef_c + log pi_c, Sw' = (1-s) Sw + s tr(Sw)/D I.
inline LdaFit lda_from_scatter(const RowMat& means, const IVec& counts, Index n, const Mat& Sw, double shrinkage) {
  const Index D = Sw.rows(), C = means.rows();
  require(Sw.allFinite(),
          "sfda: the within-class scatter has non-finite entries: the features hold inf or NaN, or values so large "
          "that their squares overflow float64; remove them or rescale the features");
  // Zero within-class scatter, relative to the data's scale: the class means of identical samples carry rounding
  // noise of up to ~N eps of their magnitude, so an exact test would pass or refuse constant classes by chance.
  double second_moment = Sw.trace();
  for (Index c = 0; c < C; ++c)
    second_moment += static_cast<double>(counts[c]) / static_cast<double>(n) * means.row(c).squaredNorm();
  const double rounding = constants::SFDA_ZERO_SCATTER_FACTOR * static_cast<double>(n) * std::numeric_limits<double>::epsilon();
  if (!(Sw.trace() > rounding * rounding * second_moment))
    throw std::invalid_argument(
        "sfda: the within-class scatter is zero (every class's samples are identical, e.g. one sample per class); "
        "the Fisher discriminant is undefined. Expected at least one class with two different samples");
  LdaFit fit;
  fit.shrinkage = std::isnan(shrinkage) ? adaptive_shrinkage(Sw) : shrinkage;
  const double s = fit.shrinkage;
  Mat shrunk = (1.0 - s) * Sw;
  shrunk.diagonal().array() += s * Sw.trace() / static_cast<double>(D);
  Mat rhs = means.transpose();  // D x C
  Mat solved;
  if (blocked_cholesky_solve(shrunk, rhs, solved)) {
    // BLAS-backed Cholesky: done
  } else if (Eigen::LLT<Mat> llt(shrunk); llt.info() == Eigen::Success) {
    solved = llt.solve(rhs);
  } else {
    Eigen::LDLT<Mat> ldlt(shrunk);
    require(ldlt.info() == Eigen::Success,
            "sfda: the shrunk within-class scatter could not be factorised; rescale the features (e.g. standardise "
            "each column) or pass a larger shrinkage");
    solved = ldlt.solve(rhs);
  }
  fit.coef = solved.transpose();
  fit.intercept.resize(C);
  for (Index c = 0; c < C; ++c)
    fit.intercept[c] = -0.5 * means.row(c).dot(fit.coef.row(c)) +
                       std::log(static_cast<double>(counts[c]) / static_cast<double>(n));
  return fit;
}

// Row-wise softmax in place.
inline void softmax_rows(RowMat& z) {
  for (Index i = 0; i < z.rows(); ++i) {
    const double top = z.row(i).maxCoeff();
    z.row(i) = (z.row(i).array() - top).exp();
    z.row(i) /= z.row(i).sum();
  }
}

}  // namespace detail

template <typename T>
LdaFit sfda_fit(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes, double shrinkage) {
  require(X.n >= 1 && X.d >= 1, "features must have at least one row and one column");
  SerialScope serial(linalg().use_syrk(X.d, X.n));
  const IVec counts = count_labels(labels, X.n, n_classes);
  require_all_present(counts);
  const RowMat means = means_from_sums(class_sums(X, labels, n_classes), counts);
  const Mat Sw = within_scatter(X, labels, means) / static_cast<double>(X.n);
  return detail::lda_from_scatter(means, counts, X.n, Sw, shrinkage);
}

struct SfdaScore {
  double score = 0.0;
  double shrinkage = 0.0;
};

template <typename T>
SfdaScore sfda_score(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes, double shrinkage) {
  const Index N = X.n, D = X.d, C = n_classes;
  require(C >= 2, "SFDA needs at least 2 classes, got " + std::to_string(C));
  const bool with_blas = linalg().use_syrk(D, N);
  SerialScope serial(with_blas);
  require(N >= 1 && D >= 1, "features must have at least one row and one column");
  const IVec counts = count_labels(labels, N, C);
  require_all_present(counts);
  const RowMat means = means_from_sums(class_sums(X, labels, C), counts);
  const LdaFit first = detail::lda_from_scatter(
      means, counts, N, within_scatter(X, labels, means) / static_cast<double>(N), shrinkage);
  // mean of the other classes' means
  const Eigen::RowVectorXd total = means.colwise().sum();
  RowMat others(C, D);
  for (Index c = 0; c < C; ++c) others.row(c) = (total - means.row(c)) / static_cast<double>(C - 1);

  // ConfMix weight a_i = softmax(p(.|x_i))_{y_i}, and the class sums of the mixed rows.
  Vec weight(N);
  const int nt = segment_threads();
  // Sum of a_i x_i per class plus (sum of 1 - a_i) times the other classes' mean: one update per row, not two.
  std::vector<RowMat> parts(nt, RowMat::Zero(C, D));
  std::vector<Vec> rest_parts(nt, Vec::Zero(C));
  // BLAS runs the projections single-caller: bigger blocks amortise its thread hand-over per call.
  const Index proj_rows = with_blas ? std::max<Index>(block_rows(D), 1024) : block_rows(D);
  for_row_blocks(N, proj_rows, [&](int t, Index r0, Index nb) {
    RowMat block;
    X.load_rows(r0, nb, block);
    RowMat prob;
    matmul_transposed(block, first.coef.data(), C, prob, with_blas);
    prob.rowwise() += first.intercept.transpose();
    detail::softmax_rows(prob);
    detail::softmax_rows(prob);  // the authors soften the probabilities once more
    for (Index i = 0; i < nb; ++i) {
      const Index c = labels[r0 + i];
      const double a = prob(i, c);
      weight[r0 + i] = a;
      parts[t].row(c) += a * block.row(i);
      rest_parts[t][c] += 1.0 - a;
    }
  });
  RowMat mixed_sums = reduce_sum(parts);
  const Vec rest = reduce_sum(rest_parts);
  for (Index c = 0; c < C; ++c) mixed_sums.row(c) += rest[c] * others.row(c);
  const RowMat mixed_means = means_from_sums(mixed_sums, counts);
  // mixed and centred in one sweep over each row
  const Mat Sw = gram_pass(X, [&](Index r0, auto& block) {
                   for (Index i = 0; i < block.rows(); ++i) {
                     const Index c = labels[r0 + i];
                     const double a = weight[r0 + i];
                     block.row(i) = a * block.row(i) + (1.0 - a) * others.row(c) - mixed_means.row(c);
                   }
                 }) /
                 static_cast<double>(N);
  const LdaFit second = detail::lda_from_scatter(mixed_means, counts, N, Sw, first.shrinkage);

  // (a x + (1 - a) o_c) coef^T = a (x coef^T) + (1 - a) (o_c coef^T): the mixed rows are never formed.
  const RowMat others_proj = others * second.coef.transpose();  // C x C
  std::vector<double> score_parts(nt, 0.0);
  for_row_blocks(N, proj_rows, [&](int t, Index r0, Index nb) {
    RowMat block;
    X.load_rows(r0, nb, block);
    RowMat prob;
    matmul_transposed(block, second.coef.data(), C, prob, with_blas);
    for (Index i = 0; i < nb; ++i) {
      const Index c = labels[r0 + i];
      const double a = weight[r0 + i];
      prob.row(i) = a * prob.row(i) + (1.0 - a) * others_proj.row(c) + second.intercept.transpose();
    }
    detail::softmax_rows(prob);
    double acc = 0.0;
    for (Index i = 0; i < nb; ++i) acc += prob(i, labels[r0 + i]);
    score_parts[t] += acc;
  });
  double total_p = 0.0;
  for (double p : score_parts) total_p += p;
  SfdaScore out;
  out.score = total_p / static_cast<double>(N);
  out.shrinkage = first.shrinkage;
  return out;
}

}  // namespace pedrank
