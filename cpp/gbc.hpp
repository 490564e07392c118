// GBC (Pandy et al. 2022): PCA, per-class Gaussians, the sum of pairwise Bhattacharyya coefficients.
// The PCA computes only the top k eigenpairs (LAPACK dsyevr) and never materialises the projected N x k features:
// class means are projected directly and the per-class
// variances come from one pass of projected, class-centred row blocks. Everything is in logs.
#pragma once

#include <cmath>

#include "constants.hpp"
#include "scatter.hpp"

namespace pedrank {

template <typename T>
double gbc(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes, Index n_components, bool diagonal,
           bool exact_logdet) {
  const Index N = X.n, D = X.d, C = n_classes;
  require(N >= 1 && D >= 1, "features must have at least one row and one column");
  require(n_components >= 1, "n_components must be >= 1, got " + std::to_string(n_components));
  const IVec counts = count_labels(labels, N, C);
  require_all_present(counts);
  const bool with_blas = linalg().use_syrk(D, N);
  SerialScope serial(with_blas);
  const RowMat sums = class_sums(X, labels, C);
  const RowMat means = means_from_sums(sums, counts);
  const Vec mean = mean_from_sums(sums, N);
  const Index k = std::min({n_components, D, N});

  const SymEig eig = sym_eig_top(centred_covariance(X, mean), k, "the D x D covariance matrix (GBC's PCA)");
  const Mat V = eig.vectors.rowwise().reverse();  // top k, descending
  const RowMat Vt = V.transpose();
  RowMat centred_means = means;
  centred_means.rowwise() -= mean.transpose();
  const RowMat pmeans = centred_means * V;  // C x k

  const int nt = segment_threads();
  std::vector<RowMat> parts(nt);
  for_row_blocks(N, block_rows(D), [&](int t, Index r0, Index nb) {
    RowMat block;
    X.load_rows(r0, nb, block);
    block.rowwise() -= mean.transpose();
    RowMat z;
    matmul_transposed(block, Vt.data(), k, z, with_blas);
    if (parts[t].size() == 0) parts[t] = RowMat::Zero(C, k);
    for (Index i = 0; i < nb; ++i) {
      const Index c = labels[r0 + i];
      parts[t].row(c).array() += (z.row(i) - pmeans.row(c)).array().square();
    }
  });
  RowMat var = RowMat::Zero(C, k);
  for (auto& part : parts)
    if (part.size() != 0) var += part;
  for (Index c = 0; c < C; ++c) var.row(c) /= static_cast<double>(counts[c]);
  var = var.cwiseMax(constants::GBC_VARIANCE_FLOOR);

  // Per-row partial sums, added in row order afterwards: the result does not depend on thread scheduling.
  Vec row_total = Vec::Zero(C);
  if (diagonal) {
    const RowMat log_var = var.array().log();
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4) num_threads(max_threads()) if (C > 32)
#endif
    for (Index i = 0; i < C; ++i) {
      double total = 0.0;
      for (Index j = i + 1; j < C; ++j) {
        double maha = 0.0, logdet = 0.0;
        for (Index d = 0; d < k; ++d) {
          const double s = 0.5 * (var(i, d) + var(j, d));
          const double diff = pmeans(i, d) - pmeans(j, d);
          maha += diff * diff / s;
          logdet += std::log(s) - 0.5 * log_var(i, d) - 0.5 * log_var(j, d);
        }
        total += std::exp(-(maha / 8.0 + 0.5 * logdet));
      }
      row_total[i] = total;
    }
  } else {
    const Vec spherical = var.rowwise().mean();
    const double logdet_weight = exact_logdet ? static_cast<double>(k) : 1.0;  // authors: scalar taken once
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4) num_threads(max_threads()) if (C > 32)
#endif
    for (Index i = 0; i < C; ++i) {
      double total = 0.0;
      for (Index j = i + 1; j < C; ++j) {
        const double s = 0.5 * (spherical[i] + spherical[j]);
        const double maha = (pmeans.row(i) - pmeans.row(j)).squaredNorm() / s;
        const double logdet =
            logdet_weight * (std::log(s) - 0.5 * std::log(spherical[i]) - 0.5 * std::log(spherical[j]));
        total += std::exp(-(maha / 8.0 + 0.5 * logdet));
      }
      row_total[i] = total;
    }
  }
  double total = 0.0;
  for (Index i = 0; i < C; ++i) total += row_total[i];
  return -2.0 * total;  // ordered pairs: each unordered pair counts twice
}

}  // namespace pedrank
