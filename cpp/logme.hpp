// LogME (You et al. 2021) with the fixed-point solver of the follow-up paper, every target solved from one
// eigen-decomposition of a Gram matrix.
//
// Factorisation. N > D: eigen-decompose X^T X (D x D) like the authors' truncated_svd; s = sqrt(sigma) and only
// components with s > 1e-10 and sigma above the Gram matrix's rounding level are kept, and the evidence's first
// term counts the kept components (the authors' code reaches the same number by keeping rounding-noise
// directions, each of which adds log(alpha) back to its log-determinant). N <= D: the authors take a thin SVD of X and keep all min(N, D) = N
// singular values, zeros included; we eigen-decompose X X^T (N x N), whose eigenvectors are u directly, clamp
// round-off negatives to 0 and likewise keep all N components. Keeping them matters: each (near-)zero
// component still adds -1/2 log(alpha) to the evidence, so dropping them would not reproduce the authors.
#pragma once

#include <cmath>
#include <limits>

#include "constants.hpp"
#include "scatter.hpp"

namespace pedrank {

struct LogMEResult {
  Vec evidence, alpha, beta;
  Mat weights;  // D x K posterior means
};

namespace detail {

// M_PI is POSIX, not C++ (MSVC hides it): spelled out.
inline constexpr double kPi = 3.141592653589793238462643383279502884;

// The fixed point for one target. x: projections u^T t (k), tt = |t|^2. dim_term is D (authors) or k (exact).
// Returns lam = alpha/beta of the last iteration (the one the posterior mean uses, as in the authors' code).
inline double logme_fixed_point(const Vec& sigma, const double* x, double tt, double n, double dim_term,
                                double& evidence, double& alpha_out, double& beta_out) {
  const Index k = sigma.size();
  double sum_x2 = 0.0;
  for (Index j = 0; j < k; ++j) sum_x2 += x[j] * x[j];
  const double res_x2 = tt - sum_x2;
  double alpha = 1.0, beta = 1.0, lam = 1.0, m2 = 0.0, res2 = 0.0;
  for (int iteration = 0; iteration < constants::LOGME_MAX_ITERATIONS; ++iteration) {
    lam = alpha / beta;
    double gamma = 0.0;
    m2 = 0.0;
    res2 = 0.0;
    for (Index j = 0; j < k; ++j) {
      const double sj = sigma[j], x2 = x[j] * x[j];
      const double denom = lam + sj;
      gamma += sj / denom;
      m2 += sj * x2 / (denom * denom);
      const double shrink = 1.0 + sj / lam;
      res2 += x2 / (shrink * shrink);
    }
    res2 += res_x2;
    alpha = gamma / (m2 + constants::LOGME_EPSILON);
    beta = (n - gamma) / (res2 + constants::LOGME_EPSILON);
    if (std::abs(alpha / beta - lam) / lam <= constants::LOGME_TOLERANCE) break;
  }
  double log_det = 0.0;
  for (Index j = 0; j < k; ++j) log_det += std::log(alpha + beta * sigma[j]);
  evidence = (dim_term / 2.0 * std::log(alpha) + n / 2.0 * std::log(beta) - 0.5 * log_det - beta / 2.0 * res2 -
              alpha / 2.0 * m2 - n / 2.0 * std::log(2.0 * kPi)) /
             n;
  alpha_out = alpha;
  beta_out = beta;
  return lam;
}

// proj: k x K (for N > D: V^T X^T t, i.e. s * x; for N <= D: x = u^T t). Fills evidence/alpha/beta and returns
// per-target lam.
inline Vec solve_targets(const Vec& sigma, const Mat& x, const Vec& tt, double n, double dim_term,
                         LogMEResult& out) {
  const Index K = x.cols();
  out.evidence.resize(K);
  out.alpha.resize(K);
  out.beta.resize(K);
  Vec lam(K);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(max_threads()) if (K * sigma.size() > 100000)
#endif
  for (Index c = 0; c < K; ++c)
    lam[c] = logme_fixed_point(sigma, x.col(c).data(), tt[c], n, dim_term, out.evidence[c], out.alpha[c],
                               out.beta[c]);
  return lam;
}

}  // namespace detail

// targets: nullptr for classification (labels 0..C-1, K = C), else N x K row-major float64 (labels ignored).
template <typename T>
LogMEResult logme(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes, const double* targets,
                  Index n_targets, bool exact_dimension) {
  const Index N = X.n, D = X.d;
  require(N >= 1 && D >= 1, "features must have at least one row and one column");
  const bool regression = targets != nullptr;
  IVec counts;
  Eigen::Map<const RowMat> Y(targets, regression ? N : 0, regression ? n_targets : 0);
  Vec tt;
  if (regression) {
    tt = Y.colwise().squaredNorm().transpose();
  } else {
    counts = count_labels(labels, N, n_classes);
    tt = counts.cast<double>();
  }
  const Index K = regression ? n_targets : n_classes;
  LogMEResult out;
  const double n = static_cast<double>(N);

  if (N > D) {
    SerialScope serial(linalg().use_syrk(D, N));
    // X^T t for every target: class sums or X^T Y.
    Mat xt = regression ? transpose_times(X, Mat(Y)) : Mat(class_sums(X, labels, n_classes).transpose());
    const SymEig eig = sym_eig(gram(X), "the D x D Gram matrix X^T X (LogME)");
    const Vec& all_sigma = eig.values;
    // Directions below the Gram matrix's rounding level (sigma_max * max(N, D) * eps) are noise: on
    // rank-deficient features they pass the authors' s > 1e-10 test and u = X v / s divides noise by noise.
    // Identical to the authors' rule on full-rank features (see reference/logme.py).
    const double noise_level = all_sigma.maxCoeff() * static_cast<double>(std::max(N, D)) *
                               std::numeric_limits<double>::epsilon();
    std::vector<Index> keep;
    for (Index j = D - 1; j >= 0; --j)
      if (all_sigma[j] > 0.0 && std::sqrt(all_sigma[j]) > constants::LOGME_RANK_TOLERANCE && all_sigma[j] > noise_level) keep.push_back(j);
    const Index k = static_cast<Index>(keep.size());
    Vec sigma(k);
    Mat V(D, k);
    for (Index j = 0; j < k; ++j) {
      sigma[j] = all_sigma[keep[j]];
      V.col(j) = eig.vectors.col(keep[j]);
    }
    Mat proj = V.transpose() * xt;  // k x K, equals s * (u^T t)
    Mat x = proj;
    for (Index j = 0; j < k; ++j) x.row(j) /= std::sqrt(sigma[j]);
    // The authors' s > 1e-10 test keeps the rounding-level directions of a rank-deficient X; each adds
    // log(alpha) to their log-determinant and cancels the D - rank surplus of their D/2 log(alpha), so their
    // number is the rank-consistent evidence: the kept count k goes in the first term, whatever exact_dimension.
    Vec lam = detail::solve_targets(sigma, x, tt, n, double(k), out);
    // m = V diag(s / (lam + sigma)) x = V diag(1 / (lam + sigma)) proj
    for (Index c = 0; c < K; ++c)
      for (Index j = 0; j < k; ++j) proj(j, c) /= lam[c] + sigma[j];
    out.weights = V * proj;
  } else {
    const SymEig eig = sym_eig(row_gram(X), "the N x N Gram matrix X X^T (LogME)");
    // descending order like an SVD, negatives from round-off clamped to 0
    Vec sigma = eig.values.reverse().cwiseMax(0.0);
    Mat U = eig.vectors.rowwise().reverse();  // N x N
    Mat x;                                           // N x K = U^T t
    if (regression) {
      x = U.transpose() * Y;
    } else {
      x = Mat::Zero(N, K);
      for (Index i = 0; i < N; ++i) x.col(labels[i]) += U.row(i).transpose();
    }
    Vec lam = detail::solve_targets(sigma, x, tt, n, exact_dimension ? double(N) : double(D), out);
    // m = V diag(s / (lam + sigma)) x with V = X^T U diag(1/s): m = X^T U diag(1 / (lam + sigma)) x
    Mat coeff = x;
    for (Index c = 0; c < K; ++c)
      for (Index j = 0; j < N; ++j) coeff(j, c) /= lam[c] + sigma[j];
    out.weights = transpose_times(X, Mat(U * coeff));
  }
  return out;
}

}  // namespace pedrank
