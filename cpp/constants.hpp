// The numbers that define each score's semantics, stated once. pedrank._core exposes every one as a module
// attribute, and the Python layers (the torch kernels, pedrank.reference) read them from there
// (pedrank/_constants.py), so no implementation carries its own copy.
#pragma once

namespace pedrank::constants {

// LogME's fixed point (You et al.): at most 11 rounds, stop when alpha/beta moves by <= 1e-3 relative, 1e-5 added
// to m2 and res2; directions with singular value <= 1e-10 are dropped, as the authors' truncated_svd does.
inline constexpr int LOGME_MAX_ITERATIONS = 11;
inline constexpr double LOGME_TOLERANCE = 1e-3;
inline constexpr double LOGME_EPSILON = 1e-5;
inline constexpr double LOGME_RANK_TOLERANCE = 1e-10;

// SFDA (Shao et al.): 3 power-iteration rounds for the largest eigenvalue of Sw; shrinkage never below 1e-10.
inline constexpr int SFDA_POWER_ROUNDS = 3;
inline constexpr double SFDA_MIN_SHRINKAGE = 1e-10;
// The within-class scatter counts as zero when its trace is at most (factor * N * eps)^2 times the samples' mean
// squared norm (rounding noise of the class means of identical samples).
inline constexpr double SFDA_ZERO_SCATTER_FACTOR = 2.0;

// GBC (Pandy et al.): per-dimension class variances floored at 1e-4.
inline constexpr double GBC_VARIANCE_FLOOR = 1e-4;

// PED (Li et al.): per-dimension rescaling standard deviations floored at 1e-3.
inline constexpr double PED_SCALE_FLOOR = 1e-3;

}  // namespace pedrank::constants
