// One PED step (Li et al. 2023) on class statistics only, split in kernels:
//   class_moments: class counts, means and variances from ONE pass over X;
//   ped_pair_forces: the pairwise elastic displacements (C x D) from rescaled means and radii alone;
//   ped_forces: the two composed (one step from the features);
//   ped_apply:  X + displacement[labels] * scale written into a caller-given array (possibly X itself).
// Memory is O(C*D) (times the number of threads); the authors' C x C x D displacement tensor is never formed.
#pragma once

#include <cmath>

#include "scatter.hpp"

namespace pedrank {

struct PedForces {
  RowMat displacement;  // C x D, rescaled units
  double energy = 0.0;
  std::int64_t n_coincident = 0;
};

namespace detail {

// Per-class sums of (x - p_c) and (x - p_c)^2, p_c the class's first sample. Shifting by a sample of the class
// keeps sum-of-squares minus squared-sum from cancelling (the shift is within about one class deviation of the
// class mean), so the variances come out of a single pass as accurately as from a two-pass computation.
struct ShiftedMoments {
  RowMat pivot, sum, sumsq;  // C x D each
};

inline void accumulate_shifted(const double* pivot, const double* x, double* s1, double* s2, Index d) {
  for (Index j = 0; j < d; ++j) {
    const double v = x[j] - pivot[j];
    s1[j] += v;
    s2[j] += v * v;
  }
}

template <typename T>
inline void accumulate_shifted(const double* pivot, const T* x, double* s1, double* s2, Index d) {
  for (Index j = 0; j < d; ++j) {
    const double v = static_cast<double>(x[j]) - pivot[j];
    s1[j] += v;
    s2[j] += v * v;
  }
}

template <typename T>
ShiftedMoments shifted_class_moments(const FeatureView<T>& X, const std::int64_t* labels, Index C) {
  const Index N = X.n, D = X.d;
  ShiftedMoments m;
  m.pivot.resize(C, D);
  std::vector<char> seen(static_cast<std::size_t>(C), 0);
  RowMat row;
  for (Index i = 0; i < N; ++i) {
    const Index c = labels[i];
    if (seen[c]) continue;
    seen[c] = 1;
    X.load_rows(i, 1, row);
    m.pivot.row(c) = row.row(0);
  }
  const Index bs = block_rows(D);
  std::vector<RowMat> sums(segment_threads()), sqs(segment_threads());
  for_row_blocks(N, bs, [&](int s, Index r0, Index nb) {
    if (sums[s].size() == 0) {
      sums[s] = RowMat::Zero(C, D);
      sqs[s] = RowMat::Zero(C, D);
    }
    if (X.col_stride == 1) {
      for (Index i = r0; i < r0 + nb; ++i) {
        const Index c = labels[i];
        accumulate_shifted(m.pivot.row(c).data(), X.data + i * X.row_stride, sums[s].row(c).data(),
                           sqs[s].row(c).data(), D);
      }
    } else {
      RowMat block;
      X.load_rows(r0, nb, block);
      for (Index i = 0; i < nb; ++i) {
        const Index c = labels[r0 + i];
        accumulate_shifted(m.pivot.row(c).data(), block.row(i).data(), sums[s].row(c).data(),
                           sqs[s].row(c).data(), D);
      }
    }
  });
  m.sum = reduce_sum(sums);
  m.sumsq = reduce_sum(sqs);
  return m;
}

}  // namespace detail

// Per-class counts, means and per-column population variances (raw units) from one shifted pass over X. PED needs
// nothing else from the features: moving a whole class changes its mean and leaves its variances as they are, so
// every step after the first works on these C x D numbers alone.
struct ClassMoments {
  IVec counts;
  RowMat mean, var;  // C x D each
};

template <typename T>
ClassMoments class_moments(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes) {
  require(X.n >= 1 && X.d >= 1, "features must have at least one row and one column");
  ClassMoments out;
  out.counts = count_labels(labels, X.n, n_classes);
  require_all_present(out.counts);
  const detail::ShiftedMoments m = detail::shifted_class_moments(X, labels, n_classes);
  out.mean.resize(n_classes, X.d);
  out.var.resize(n_classes, X.d);
  for (Index c = 0; c < n_classes; ++c) {
    const double n_c = static_cast<double>(out.counts[c]);
    const Eigen::ArrayXd shift = m.sum.row(c).transpose().array() / n_c;
    out.mean.row(c) = (m.pivot.row(c).transpose().array() + shift).transpose();
    out.var.row(c) = (m.sumsq.row(c).transpose().array() / n_c - shift.square()).max(0.0).transpose();
  }
  return out;
}

// Column means and population standard deviations (PED's rescaling statistics): the moments of X as one class,
// one shifted pass, O(D) memory.
template <typename T>
std::pair<Vec, Vec> mean_std(const FeatureView<T>& X) {
  const std::vector<std::int64_t> one_class(static_cast<std::size_t>(X.n), 0);
  const ClassMoments m = class_moments(X, one_class.data(), 1);
  return {m.mean.row(0).transpose(), m.var.row(0).transpose().cwiseSqrt()};
}

// The pairwise elastic displacements of classes with rescaled means mu (C x D) and radii R (C): O(C^2 D) work,
// O(C^2 + C D) memory, no pass over the features.
inline PedForces ped_pair_forces(const RowMat& mu, const Vec& R, double radius, double elastic, double time_step) {
  const Index C = mu.rows(), D = mu.cols();
  require(R.size() == C, "radii must have one entry per class (" + std::to_string(C) + "), got " +
                             std::to_string(R.size()));
  require(mu.allFinite() && R.allFinite(),
          "ped: the class statistics are not finite: the features hold inf or NaN, or values too large to square "
          "in float64; remove them or rescale the features");
  require((R.array() >= 0.0).all(), "radii must be >= 0");

  // Distances of every unordered pair, each computed by one thread: deterministic.
  Mat dist = Mat::Zero(C, C);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(max_threads()) if (C * C * D > 1000000)
#endif
  for (Index i = 0; i < C; ++i)
    for (Index j = i + 1; j < C; ++j) dist(i, j) = (mu.row(i) - mu.row(j)).norm();

  // Step length over distance for every overlapping pair (0 otherwise), energy and coincident pairs, in order.
  Mat weight = Mat::Zero(C, C);
  double energy = 0.0;
  std::int64_t coincident = 0;
  const double half_t2 = 0.5 * time_step * time_step;
  for (Index j = 0; j < C; ++j)
    for (Index i = 0; i < j; ++i) {
      const double d = dist(i, j);
      const double overlap = std::max(radius * R[i] + radius * R[j] - d, 0.0);
      if (!(overlap > 0.0)) continue;
      if (d == 0.0) {
        ++coincident;  // no direction to push along: skipped, and left out of the energy too
        continue;
      }
      energy += elastic * overlap * overlap / 2.0;
      weight(i, j) = weight(j, i) = std::min(half_t2 * elastic * overlap, overlap) / d;
    }

  // displacement_i = sum_j weight_ij (mu_i - mu_j): one row per thread, j in order.
  PedForces out;
  out.displacement = RowMat::Zero(C, D);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(max_threads()) if (C * C * D > 1000000)
#endif
  for (Index i = 0; i < C; ++i) {
    double* acc = out.displacement.row(i).data();
    const double* mi = mu.row(i).data();
    for (Index j = 0; j < C; ++j) {
      const double w = weight(j, i);
      if (w == 0.0) continue;
      const double* mj = mu.row(j).data();
      for (Index k = 0; k < D; ++k) acc[k] += w * (mi[k] - mj[k]);
    }
  }
  out.energy = energy;
  out.n_coincident = coincident;
  return out;
}

// Rescaled class means (mu = (mean - center) / scale) and radii (R = sqrt(sum_d var_d / scale_d^2)).
inline std::pair<RowMat, Vec> ped_rescaled_classes(const ClassMoments& m, const Vec& center, const Vec& scale) {
  const Index C = m.mean.rows(), D = m.mean.cols();
  require(center.size() == D, "center must have length " + std::to_string(D) + ", got " +
                                  std::to_string(center.size()));
  require(scale.size() == D, "scale must have length " + std::to_string(D) + ", got " + std::to_string(scale.size()));
  require((scale.array() > 0.0).all() && scale.allFinite(), "scale must be finite and > 0");
  const Eigen::ArrayXd inv_scale = scale.array().inverse();
  const Eigen::ArrayXd inv_scale2 = inv_scale.square();
  RowMat mu(C, D);
  Vec R(C);
  for (Index c = 0; c < C; ++c) {
    mu.row(c) = ((m.mean.row(c).transpose().array() - center.array()) * inv_scale).transpose();
    R[c] = std::sqrt((m.var.row(c).transpose().array() * inv_scale2).sum());
  }
  return {mu, R};
}

// One step from the features: class statistics in rescaled units Z = (X - center) / scale (one pass over X),
// then the pairwise elastic displacements.
template <typename T>
PedForces ped_forces(const FeatureView<T>& X, const std::int64_t* labels, Index n_classes, const Vec& center,
                     const Vec& scale, double radius, double elastic, double time_step) {
  const auto [mu, R] = ped_rescaled_classes(class_moments(X, labels, n_classes), center, scale);
  return ped_pair_forces(mu, R, radius, elastic, time_step);
}

// out = X + displacement[labels] * scale (out: N x D with the given element strides; it may be X itself, each
// element being read before it is written).
template <typename T, typename U>
void ped_apply(const FeatureView<T>& X, const std::int64_t* labels, const RowMat& displacement, const Vec& scale,
               U* out, Index out_row_stride, Index out_col_stride) {
  const Index D = X.d;
  const RowMat shift = displacement * scale.asDiagonal();  // C x D, X units
  for_row_blocks(X.n, block_rows(D), [&](int, Index r0, Index nb) {
    if (X.col_stride == 1 && out_col_stride == 1) {
      for (Index i = r0; i < r0 + nb; ++i) {
        const T* src = X.data + i * X.row_stride;
        U* dst = out + i * out_row_stride;
        const double* sh = shift.row(labels[i]).data();
        for (Index j = 0; j < D; ++j) dst[j] = static_cast<U>(static_cast<double>(src[j]) + sh[j]);
      }
      return;
    }
    RowMat block;
    X.load_rows(r0, nb, block);  // the whole block is read before any of it is written
    for (Index i = 0; i < nb; ++i) {
      block.row(i) += shift.row(labels[r0 + i]);
      U* dst = out + (r0 + i) * out_row_stride;
      for (Index j = 0; j < D; ++j) dst[j * out_col_stride] = static_cast<U>(block(i, j));
    }
  });
}

}  // namespace pedrank
