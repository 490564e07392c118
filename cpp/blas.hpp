// Optional BLAS/LAPACK routines borrowed at import time from the OpenBLAS that SciPy ships (through the function
// pointers that scipy.linalg.cython_blas / cython_lapack export). Wheels are built without -march=native, so
// Eigen's own products only use SSE2, and Eigen's symmetric eigensolver is single-threaded and unblocked: on a
// 2-core AVX-512 machine OpenBLAS's dsyrk is 2-3x faster than Eigen's rank update and LAPACK's dsyevd is about
// 10x faster than Eigen's solver at D = 2048. When SciPy is missing, everything falls back to Eigen.
#pragma once

#include <Eigen/Eigenvalues>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <string>

#include "common.hpp"

namespace pedrank {

struct Linalg {
  using dsyrk_t = void (*)(char*, char*, int*, int*, double*, double*, int*, double*, double*, int*);
  using dsyevd_t = void (*)(char*, char*, int*, double*, int*, double*, double*, int*, int*, int*, int*);
  using dsyevr_t = void (*)(char*, char*, char*, int*, double*, int*, double*, double*, int*, int*, double*, int*,
                            double*, double*, int*, int*, double*, int*, int*, int*, int*);
  using dgemm_t = void (*)(char*, char*, int*, int*, int*, double*, double*, int*, double*, int*, double*, double*,
                           int*);
  using set_threads_local_t = int (*)(int);
  dgemm_t dgemm = nullptr;
  dsyrk_t dsyrk = nullptr;
  // OpenBLAS's per-calling-thread thread count (openblas_set_num_threads_local, OpenBLAS >= 0.3.26), if found.
  set_threads_local_t set_threads_local = nullptr;
  // OpenBLAS threads for the eigensolvers (0 = OpenBLAS's own count, as numpy and scipy use). Measured at
  // D = 2048 on 2 cores: LogME 3.25 s with both threads against 3.78 s with one on a quiet machine, but 2.7-3.2 s
  // against 2.1-2.2 s while another process keeps one core busy (the solver's many small level-2 calls each
  // synchronise the workers). PEDRANK_EIG_THREADS=1 suits a machine shared with other work.
  // Atomic: _core.set_eig_threads may run while other threads' kernels read it with the GIL released.
  std::atomic<int> eig_threads{[] {
    const char* env = std::getenv("PEDRANK_EIG_THREADS");
    return env ? std::max(std::atoi(env), 0) : 0;
  }()};
  dsyevd_t dsyevd = nullptr;
  dsyevr_t dsyevr = nullptr;  // top-k eigenpairs only (GBC's PCA)
  std::atomic<bool> enabled{true};  // _core.set_blas(False), e.g. to measure Eigen's path; read by running kernels
  // Why the routines above are (not) in use: "scipy-openblas", or the reason of the fall-back to Eigen.
  std::string status = "not loaded";

  // OpenBLAS's threads and ours spin-wait against each other on a small machine, which costs up to ~0.1 s per
  // hand-over: worth it only when the BLAS call itself is large.
  bool use_syrk(Index n, Index k_total) const {
    return enabled && dsyrk != nullptr && n >= 256 && static_cast<double>(n) * n * k_total >= 1e9;
  }
  bool use_syevd(Index n) const { return enabled && dsyevd != nullptr && n >= 256; }
  bool available() const { return dsyrk != nullptr && dsyevd != nullptr && dgemm != nullptr; }
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

// out (m x n, row-major) = A (m x k, row-major) * Bt^T, Bt given row-major n x k. BLAS when with_blas.
inline void matmul_transposed(const RowMat& A, const double* bt, Index n, RowMat& out, bool with_blas) {
  const Index m = A.rows(), k = A.cols();
  out.resize(m, n);
  Linalg& la = linalg();
  if (with_blas && la.enabled && la.dgemm != nullptr && m > 0 && n > 0 && k > 0 && fits_int(m) && fits_int(n) &&
      fits_int(k)) {
    // column-major view: out^T (n x m) = Bt (n x k) * A^T (k x m)
    char ta = 'T', tb = 'N';
    int m_ = static_cast<int>(n), n_ = static_cast<int>(m), k_ = static_cast<int>(k);
    double one = 1.0, zero = 0.0;
    la.dgemm(&ta, &tb, &m_, &n_, &k_, &one, const_cast<double*>(bt), &k_, const_cast<double*>(A.data()), &k_, &zero,
             out.data(), &m_);
  } else {
    Eigen::Map<const RowMat> Bt(bt, n, k);
    out.noalias() = A * Bt.transpose();
  }
}

// Eigen-decomposition of a symmetric matrix (ascending eigenvalues, eigenvectors in columns).
struct SymEig {
  Vec values;
  Mat vectors;
};

namespace detail {

// what: which matrix, for the message ("the D x D Gram matrix X^T X").
inline void require_finite_matrix(const Mat& a, const char* what) {
  if (!a.allFinite())
    throw std::invalid_argument(std::string(what) +
                                " has non-finite entries: the features hold inf or NaN, or values so large that "
                                "their squares overflow float64 (|x| above about 1e150). Remove non-finite values "
                                "or rescale the features (e.g. divide by their largest absolute value)");
}

[[noreturn]] inline void eig_failed(const char* what, const std::string& detail) {
  throw std::invalid_argument(std::string("eigen-decomposition of ") + what + " failed (" + detail +
                              "). This happens with extreme magnitudes or badly scaled features: rescale them "
                              "(e.g. standardise each column, or divide by the largest absolute value)");
}

// OpenBLAS threads for the LAPACK eigensolvers, restored on exit.
struct EigThreadsGuard {
  Linalg& la;
  int previous = -1;
  explicit EigThreadsGuard(Linalg& l) : la(l) {
    const int threads = la.eig_threads.load();
    if (la.set_threads_local && threads > 0) previous = la.set_threads_local(threads);
  }
  ~EigThreadsGuard() {
    if (previous > 0) la.set_threads_local(previous);
  }
};

}  // namespace detail

inline SymEig sym_eig(Mat a, const char* what = "a symmetric matrix") {
  const Index n = a.rows();
  detail::require_finite_matrix(a, what);
  SymEig out;
  Linalg& la = linalg();
  if (n > 0 && la.use_syevd(n) && fits_int(n)) {
    detail::EigThreadsGuard guard(la);
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
      if (info == 0 && out.values.allFinite()) {
        out.vectors = std::move(a);
        return out;
      }
    }
    detail::eig_failed(what, "LAPACK dsyevd returned info = " + std::to_string(info));
  }
  Eigen::SelfAdjointEigenSolver<Mat> eig(a);
  if (eig.info() != Eigen::Success) detail::eig_failed(what, "the iteration did not converge");
  out.values = eig.eigenvalues();
  out.vectors = eig.eigenvectors();
  return out;
}

// The k largest eigenpairs, in ascending order like sym_eig (LAPACK dsyevr with an index range when available:
// the tridiagonal reduction plus k eigenvectors, instead of all n).
inline SymEig sym_eig_top(Mat a, Index k, const char* what = "a symmetric matrix") {
  const Index n = a.rows();
  k = std::min(k, n);
  Linalg& la = linalg();
  if (!(n > 0 && k < n && la.enabled && la.dsyevr != nullptr && n >= 256 && fits_int(n))) {
    SymEig all = sym_eig(std::move(a), what);
    SymEig out;
    out.values = all.values.tail(k);
    out.vectors = all.vectors.rightCols(k);
    return out;
  }
  detail::require_finite_matrix(a, what);
  detail::EigThreadsGuard guard(la);
  char jobz = 'V', range = 'I', uplo = 'L';
  int n_ = static_cast<int>(n), lda = n_, il = n_ - static_cast<int>(k) + 1, iu = n_, m = 0, ldz = n_, info = 0;
  double vl = 0.0, vu = 0.0, abstol = 0.0;  // abstol 0: LAPACK's default tolerance
  SymEig out;
  Vec w(n);
  Mat z(n, k);
  std::vector<int> isuppz(static_cast<std::size_t>(2 * k));
  int lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0.0;
  la.dsyevr(&jobz, &range, &uplo, &n_, a.data(), &lda, &vl, &vu, &il, &iu, &abstol, &m, w.data(), z.data(), &ldz,
            isuppz.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info == 0) {
    lwork = static_cast<int>(work_query) + 1;
    liwork = std::max(iwork_query, 1);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    la.dsyevr(&jobz, &range, &uplo, &n_, a.data(), &lda, &vl, &vu, &il, &iu, &abstol, &m, w.data(), z.data(), &ldz,
              isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
    if (info == 0 && m == static_cast<int>(k) && w.head(k).allFinite()) {
      out.values = w.head(k);
      out.vectors = std::move(z);
      return out;
    }
  }
  detail::eig_failed(what, "LAPACK dsyevr returned info = " + std::to_string(info) + " with " + std::to_string(m) +
                               " of " + std::to_string(k) + " eigenpairs");
}

}  // namespace pedrank
