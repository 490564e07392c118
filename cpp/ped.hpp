// One PED step (Li et al. 2023) on class statistics only: O(C*D) memory, two passes over X for the statistics
// and one writing the moved features. The authors' C x C x D displacement tensor is never formed.
#pragma once

#include <cmath>

#include "scatter.hpp"

namespace pedrank {

struct PedStep {
  RowMat displacement;  // C x D, rescaled units
  double energy = 0.0;
  std::int64_t n_coincident = 0;
};

// Class statistics in rescaled units Z = (X - center) / scale and the pairwise elastic displacements.
template <typename T>
PedStep ped_displacement(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes, const Vec& center,
                         const Vec& scale, double radius, double elastic, double time_step) {
  const Index N = X.n, D = X.d, C = n_classes;
  require(N >= 1 && D >= 1, "features must have at least one row and one column");
  require(center.size() == D, "center must have length " + std::to_string(D) + ", got " +
                                  std::to_string(center.size()));
  require(scale.size() == D, "scale must have length " + std::to_string(D) + ", got " + std::to_string(scale.size()));
  require((scale.array() > 0.0).all() && scale.allFinite(), "scale must be finite and > 0");
  const IVec counts = count_labels(labels, N, C);
  require_all_present(counts);
  const RowMat means_x = means_from_sums(class_sums(X, labels, C), counts);

  // per-class sum of squared deviations from the class mean, in X units
  const int nt = max_threads();
  std::vector<RowMat> parts(nt);
  for_row_blocks(N, block_rows(D), [&](int t, Index r0, Index nb) {
    RowMat block;
    X.load_rows(r0, nb, block);
    if (parts[t].size() == 0) parts[t] = RowMat::Zero(C, D);
    for (Index i = 0; i < nb; ++i) {
      const Index c = labels[r0 + i];
      parts[t].row(c).array() += (block.row(i) - means_x.row(c)).array().square();
    }
  });
  RowMat sq = RowMat::Zero(C, D);
  for (auto& part : parts)
    if (part.size() != 0) sq += part;

  const Eigen::ArrayXd inv_scale = scale.array().inverse();
  RowMat mu(C, D);
  Vec R(C);
  for (Index c = 0; c < C; ++c) {
    mu.row(c) = ((means_x.row(c).transpose().array() - center.array()) * inv_scale).transpose();
    const double var_sum = (sq.row(c).transpose().array() * inv_scale.square()).sum() / static_cast<double>(counts[c]);
    R[c] = std::sqrt(var_sum);
  }

  PedStep out;
  out.displacement = RowMat::Zero(C, D);
  std::vector<RowMat> disp(nt);
  double energy = 0.0;
  std::int64_t coincident = 0;
  const double half_t2 = 0.5 * time_step * time_step;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (C * C * D > 1000000)
#endif
  {
    RowMat& mine = disp[thread_id()];
    mine = RowMat::Zero(C, D);
    Eigen::RowVectorXd diff(D);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1) reduction(+ : energy, coincident)
#endif
    for (Index i = 0; i < C; ++i)
      for (Index j = i + 1; j < C; ++j) {
        diff = mu.row(i) - mu.row(j);
        const double dist = diff.norm();
        const double overlap = std::max(radius * R[i] + radius * R[j] - dist, 0.0);
        if (!(overlap > 0.0)) continue;
        if (dist == 0.0) {
          ++coincident;  // no direction to push along: skipped, and left out of the energy too
          continue;
        }
        energy += elastic * overlap * overlap / 2.0;
        const double s = std::min(half_t2 * elastic * overlap, overlap);
        diff *= s / dist;
        mine.row(i) += diff;
        mine.row(j) -= diff;
      }
  }
  for (auto& part : disp)
    if (part.size() != 0) out.displacement += part;
  out.energy = energy;
  out.n_coincident = coincident;
  return out;
}

// moved = X + displacement[labels] * scale, written into out (N x D with the given element strides).
template <typename T>
void ped_move(const FeatureView<T>& X, const std::int64_t* labels, const RowMat& displacement, const Vec& scale,
              T* out, Index out_row_stride, Index out_col_stride) {
  const RowMat shift = displacement * scale.asDiagonal();  // C x D, X units
  for_row_blocks(X.n, block_rows(X.d), [&](int, Index r0, Index nb) {
    RowMat block;
    X.load_rows(r0, nb, block);
    for (Index i = 0; i < nb; ++i) {
      block.row(i) += shift.row(labels[r0 + i]);
      T* dst = out + (r0 + i) * out_row_stride;
      for (Index j = 0; j < X.d; ++j) dst[j * out_col_stride] = static_cast<T>(block(i, j));
    }
  });
}

}  // namespace pedrank
