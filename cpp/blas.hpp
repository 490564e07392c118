// Optional BLAS/LAPACK routines borrowed at import time from the OpenBLAS that SciPy ships (through the function
// pointers that scipy.linalg.cython_blas / cython_lapack export). Wheels are built without -march=native, so
// Eigen's own products only use SSE2, and Eigen's symmetric eigensolver is single-threaded and unblocked: on a
// 2-core AVX-512 machine OpenBLAS's dsyrk is 2-3x faster than Eigen's rank update and LAPACK's dsyevd is about
// 10x faster than Eigen's solver at D = 2048. When SciPy is missing, everything falls back to Eigen.
#pragma once

#include <Eigen/Eigenvalues>

#include <limits>

#include "common.hpp"

namespace pedrank {

struct Linalg {
  using dsyrk_t = void (*)(char*, char*, int*, int*, double*, double*, int*, double*, double*, int*);
  using dsyevd_t = void (*)(char*, char*, int*, double*, int*, double*, double*, int*, int*, int*, int*);
  dsyrk_t dsyrk = nullptr;
  dsyevd_t dsyevd = nullptr;
  bool enabled = true;  // switched off by _core.set_blas(False), e.g. to measure Eigen's path

  // OpenBLAS's threads and ours spin-wait against each other on a small machine, which costs up to ~0.1 s per
  // hand-over: worth it only when the BLAS call itself is large.
  bool use_syrk(Index n, Index k_total) const {
    return enabled && dsyrk != nullptr && n >= 256 && static_cast<double>(n) * n * k_total >= 1e9;
  }
  bool use_syevd(Index n) const { return enabled && dsyevd != nullptr && n >= 256; }
  bool available() const { return dsyrk != nullptr && dsyevd != nullptr; }
};

inline Linalg& linalg() {
  static Linalg instance;
  return instance;
}

inline bool fits_int(Index v) { return v <= static_cast<Index>(std::numeric_limits<int>::max()); }

// acc (n x n, col-major, lower triangle) += A A^T, A being n x k col-major with leading dimension lda (BLAS when
// SciPy's is loaded and enabled: callers decide by size through use_syrk).
inline void syrk_lower(Mat& acc, const double* a, Index n, Index k, Index lda) {
  if (k == 0) return;
  Linalg& la = linalg();
  if (la.enabled && la.dsyrk != nullptr && fits_int(n) && fits_int(k) && fits_int(lda)) {
    char uplo = 'L', trans = 'N';
    int n_ = static_cast<int>(n), k_ = static_cast<int>(k), lda_ = static_cast<int>(lda),
        ldc_ = static_cast<int>(acc.rows());
    double one = 1.0;
    la.dsyrk(&uplo, &trans, &n_, &k_, &one, const_cast<double*>(a), &lda_, &one, acc.data(), &ldc_);
  } else {
    Eigen::Map<const Mat, 0, Eigen::OuterStride<>> A(a, n, k, Eigen::OuterStride<>(lda));
    acc.selfadjointView<Eigen::Lower>().rankUpdate(A);
  }
}

// Eigen-decomposition of a symmetric matrix (ascending eigenvalues, eigenvectors in columns).
struct SymEig {
  Vec values;
  Mat vectors;
};

inline SymEig sym_eig(Mat a) {
  const Index n = a.rows();
  SymEig out;
  Linalg& la = linalg();
  if (n > 0 && la.use_syevd(n) && fits_int(n)) {
    char jobz = 'V', uplo = 'L';
    int n_ = static_cast<int>(n), lda = n_, info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0.0;
    out.values.resize(n);
    la.dsyevd(&jobz, &uplo, &n_, a.data(), &lda, out.values.data(), &work_query, &lwork, &iwork_query, &liwork,
              &info);
    if (info == 0) {
      lwork = static_cast<int>(work_query) + 1;
      liwork = iwork_query;
      std::vector<double> work(static_cast<std::size_t>(lwork));
      std::vector<int> iwork(static_cast<std::size_t>(std::max(liwork, 1)));
      la.dsyevd(&jobz, &uplo, &n_, a.data(), &lda, out.values.data(), work.data(), &lwork, iwork.data(), &liwork,
                &info);
      if (info == 0) {
        out.vectors = std::move(a);
        return out;
      }
    }
    throw std::runtime_error("LAPACK dsyevd failed with info = " + std::to_string(info));
  }
  Eigen::SelfAdjointEigenSolver<Mat> eig(a);
  if (eig.info() != Eigen::Success) throw std::runtime_error("symmetric eigen-decomposition did not converge");
  out.values = eig.eigenvalues();
  out.vectors = eig.eigenvectors();
  return out;
}

}  // namespace pedrank
