// pedrank._core: the pybind11 surface of the kernels. Every kernel takes float32 or float64 features (any
// non-negative strides, never copied as a whole), computes in float64 and releases the GIL while it works.
// Bad shapes or labels, and internal failures, raise pedrank's PedrankValueError (a ValueError).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef __linux__
#include <dlfcn.h>
#include <link.h>
#endif

#include <cmath>
#include <cstring>
#include <limits>
#include <regex>
#include <tuple>

#include "blas.hpp"
#include "common.hpp"
#include "constants.hpp"
#include "gbc.hpp"
#include "logme.hpp"
#include "ped.hpp"
#include "scatter.hpp"
#include "sfda.hpp"
#include "threads.hpp"

namespace py = pybind11;
using namespace pedrank;

namespace {

// The features argument, checked and viewed in place (a copy only for negative or unaligned strides).
struct Features {
  py::array array;
  bool is_float32 = false;
  Index n = 0, d = 0, row_stride = 0, col_stride = 0;

  template <typename T>
  FeatureView<T> view() const {
    return FeatureView<T>{static_cast<const T*>(array.data()), n, d, row_stride, col_stride};
  }
};

// dtype equality as NumPy defines it (py::dtype::is compares object identity: equal dtypes built another way, e.g.
// by np.dtype('<f8') or a read-only memmap, are distinct objects). Non-native byte order is not equal.
template <typename T>
bool has_dtype(const py::array& array) {
  return array.dtype().attr("__eq__")(py::dtype::of<T>()).template cast<bool>();
}

Features as_features(const py::object& obj, const char* name = "X") {
  if (!py::isinstance<py::array>(obj))
    throw std::invalid_argument(std::string(name) + " must be a numpy array, got " +
                                std::string(py::str(py::type::of(obj).attr("__name__"))));
  Features f;
  f.array = py::reinterpret_borrow<py::array>(obj);
  if (f.array.ndim() != 2)
    throw std::invalid_argument(std::string(name) + " must be 2-D (n_samples, n_features), got " +
                                std::to_string(f.array.ndim()) + "-D");
  if (has_dtype<float>(f.array)) {
    f.is_float32 = true;
  } else if (!has_dtype<double>(f.array)) {
    throw std::invalid_argument(std::string(name) + " must have dtype float32 or float64, got " +
                                std::string(py::str(f.array.dtype())));
  }
  const auto item = static_cast<py::ssize_t>(f.array.itemsize());
  auto strides_ok = [&]() {
    return f.array.strides(0) >= 0 && f.array.strides(1) >= 0 && f.array.strides(0) % item == 0 &&
           f.array.strides(1) % item == 0;
  };
  if (!strides_ok()) f.array = py::module_::import("numpy").attr("ascontiguousarray")(f.array);
  f.n = f.array.shape(0);
  f.d = f.array.shape(1);
  f.row_stride = f.array.strides(0) / item;
  f.col_stride = f.array.strides(1) / item;
  return f;
}

using LabelArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

LabelArray as_labels(const py::object& obj, Index n) {
  if (obj.is_none()) throw std::invalid_argument("labels must be a 1-D int64 array, got None");
  LabelArray labels = LabelArray::ensure(obj);
  if (!labels) throw py::error_already_set();
  if (labels.ndim() != 1 || labels.shape(0) != n)
    throw std::invalid_argument("labels must be 1-D of length " + std::to_string(n) + " (one per row of X), got shape " +
                                std::string(py::str(obj.attr("shape"))));
  return labels;
}

Vec as_vector(const py::object& obj, Index d, const char* name) {
  auto arr = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!arr || arr.ndim() != 1 || arr.shape(0) != d)
    throw std::invalid_argument(std::string(name) + " must be a 1-D float array of length " + std::to_string(d));
  return Eigen::Map<const Vec>(arr.data(), d);
}

py::array_t<double> to_numpy(const RowMat& m) {
  py::array_t<double> out({m.rows(), m.cols()});
  if (m.size()) std::memcpy(out.mutable_data(), m.data(), sizeof(double) * m.size());
  return out;
}

py::array_t<double> to_numpy(const Mat& m) { return to_numpy(RowMat(m)); }

py::array_t<double> to_numpy(const Vec& v) {
  py::array_t<double> out(v.size());
  if (v.size()) std::memcpy(out.mutable_data(), v.data(), sizeof(double) * v.size());
  return out;
}

py::array_t<std::int64_t> to_numpy(const IVec& v) {
  py::array_t<std::int64_t> out(v.size());
  if (v.size()) std::memcpy(out.mutable_data(), v.data(), sizeof(std::int64_t) * v.size());
  return out;
}

// Runs f(view) on the right scalar type with the GIL released.
template <typename F>
auto dispatch(const Features& X, F&& f) {
  py::gil_scoped_release release;
  CallThreads threads(X.n, X.d);  // the thread policy (threads.hpp), for this call's loops and BLAS calls
  if (X.is_float32) return f(X.view<float>());
  return f(X.view<double>());
}

// PED displacement argument: 2-D float64 with d columns (C rows).
RowMat as_displacement(const py::object& obj, Index d) {
  auto arr = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!arr || arr.ndim() != 2 || arr.shape(1) != d || arr.shape(0) < 1)
    throw std::invalid_argument("displacement must be a 2-D float array of shape (n_classes, " + std::to_string(d) +
                                ")");
  return Eigen::Map<const RowMat>(arr.data(), arr.shape(0), d);
}

// ped_apply's destination: a writable float32/float64 array of X's shape, either X itself or not overlapping it.
py::array as_output(const py::object& obj, const Features& X) {
  if (!py::isinstance<py::array>(obj))
    throw std::invalid_argument("out must be a numpy array, got " +
                                std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array out = py::reinterpret_borrow<py::array>(obj);
  if (out.ndim() != 2 || out.shape(0) != X.n || out.shape(1) != X.d)
    throw std::invalid_argument("out must have X's shape (" + std::to_string(X.n) + ", " + std::to_string(X.d) +
                                "), got " + std::string(py::str(obj.attr("shape"))));
  if (!has_dtype<float>(out) && !has_dtype<double>(out))
    throw std::invalid_argument("out must have dtype float32 or float64, got " + std::string(py::str(out.dtype())));
  if (!out.writeable()) throw std::invalid_argument("out must be writable (it is read-only)");
  const auto item = static_cast<py::ssize_t>(out.itemsize());
  if (out.strides(0) < 0 || out.strides(1) < 0 || out.strides(0) % item != 0 || out.strides(1) % item != 0)
    throw std::invalid_argument("out must have non-negative strides that are multiples of its item size");
  const bool same = out.data() == X.array.data() && out.itemsize() == X.array.itemsize() &&
                    out.strides(0) == X.array.strides(0) && out.strides(1) == X.array.strides(1);
  if (!same && X.n > 0 && X.d > 0) {
    const bool overlap =
        py::module_::import("numpy").attr("may_share_memory")(X.array, out).cast<bool>();
    if (overlap)
      throw std::invalid_argument("out overlaps X without being X itself; pass X (in-place) or a separate array");
  }
  return out;
}

template <typename T>
void apply_typed(const FeatureView<T>& view, const std::int64_t* y, const RowMat& displacement, const Vec& scale,
                 py::array& out) {
  const Index item = static_cast<Index>(out.itemsize());
  const Index rs = out.strides(0) / item, cs = out.strides(1) / item;
  void* dst = out.mutable_data();
  const bool single = has_dtype<float>(out);  // a Python call: before the GIL is released
  py::gil_scoped_release release;
  if (single)
    ped_apply(view, y, displacement, scale, static_cast<float*>(dst), rs, cs);
  else
    ped_apply(view, y, displacement, scale, static_cast<double*>(dst), rs, cs);
}

void apply_into(const Features& X, const std::int64_t* y, const RowMat& displacement, const Vec& scale,
                py::array& out) {
  if (X.is_float32)
    apply_typed(X.view<float>(), y, displacement, scale, out);
  else
    apply_typed(X.view<double>(), y, displacement, scale, out);
}

// openblas_set_num_threads_local of the OpenBLAS that SciPy uses, found among the loaded libraries: pip wheels
// load SciPy's 32-bit-integer library (scipy.libs/libscipy_openblas-*.so) beside NumPy's ILP64 one (which
// exports the same name), conda and Linux distributions one shared libopenblas. Picked: the only library that
// exports the function, else the one whose path names scipy and not a 64-bit build. Linux only
// (dl_iterate_phdr); elsewhere, or when none is found, the eigensolvers use OpenBLAS's own thread count.
Linalg::set_threads_local_t find_openblas_threads_local() {
#ifdef __linux__
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) -> int {
        if (info->dlpi_name && info->dlpi_name[0] != '\0')
          static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
        return 0;
      },
      &names);
  std::vector<std::pair<std::string, Linalg::set_threads_local_t>> candidates;
  for (const std::string& name : names) {
    if (name.find("blas") == std::string::npos) continue;
    void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!handle) continue;
    if (void* symbol = dlsym(handle, "openblas_set_num_threads_local"))
      candidates.emplace_back(name, reinterpret_cast<Linalg::set_threads_local_t>(symbol));
    dlclose(handle);  // RTLD_NOLOAD took a reference; the library stays loaded by its owner
  }
  if (candidates.size() == 1) return candidates.front().second;
  for (const auto& [name, function] : candidates)
    if (name.find("scipy") != std::string::npos && name.find("64") == std::string::npos) return function;
  return nullptr;
#else
  return nullptr;
#endif
}

// The C prototypes the kernels call through (blas.hpp's Linalg typedefs), as Cython writes them in the names of
// the capsules of scipy.linalg.cython_blas / cython_lapack's __pyx_capi__.
const char* const kExpectedSignatures[][2] = {
    {"dsyrk", "void (char *, char *, int *, int *, double *, double *, int *, double *, double *, int *)"},
    {"dgemm", "void (char *, char *, int *, int *, int *, double *, double *, int *, double *, int *, double *, "
              "double *, int *)"},
    {"dsyevd", "void (char *, char *, int *, double *, int *, double *, double *, int *, int *, int *, int *)"},
    {"dsyevr", "void (char *, char *, char *, int *, double *, int *, double *, double *, int *, int *, double *, "
               "int *, double *, double *, int *, int *, double *, int *, int *, int *, int *)"},
};

const char* expected_signature(const std::string& routine) {
  for (const auto& entry : kExpectedSignatures)
    if (routine == entry[0]) return entry[1];
  return "";
}

// Cython spells SciPy's `d` typedef (double) as __pyx_t_<module path>_d.
std::string normalised_signature(const char* name) {
  static const std::regex cython_double("__pyx_t_[A-Za-z0-9_]*_d\\b");
  return std::regex_replace(std::string(name ? name : ""), cython_double, "double");
}

// Borrow SciPy's BLAS/LAPACK from the two __pyx_capi__ dicts. Every capsule's signature must equal the prototype
// we call through (an ILP64 BLAS, or any other ABI change, is refused); on any mismatch or error nothing is
// borrowed and the kernels use Eigen. Returns the status that blas_status() reports.
std::string load_linalg(const py::object& blas_capi, const py::object& lapack_capi) {
  Linalg& la = linalg();
  la.dsyrk = nullptr;
  la.dgemm = nullptr;
  la.dsyevd = nullptr;
  la.dsyevr = nullptr;
  la.set_threads_local = nullptr;
  void* found[4] = {nullptr, nullptr, nullptr, nullptr};
  try {
    const char* routines[4] = {"dsyrk", "dgemm", "dsyevd", "dsyevr"};
    for (int i = 0; i < 4; ++i) {
      const py::dict capi = py::reinterpret_borrow<py::dict>(i < 2 ? blas_capi : lapack_capi);
      if (!capi.contains(routines[i])) {
        la.status = std::string("eigen (SciPy exports no ") + routines[i] + ")";
        return la.status;
      }
      py::object capsule = capi[routines[i]];
      PyObject* raw = capsule.ptr();
      if (!PyCapsule_CheckExact(raw)) {
        la.status = std::string("eigen (SciPy's ") + routines[i] + " is not a capsule)";
        return la.status;
      }
      const char* name = PyCapsule_GetName(raw);
      const std::string signature = normalised_signature(name);
      if (signature != expected_signature(routines[i])) {
        la.status = std::string("eigen (SciPy's ") + routines[i] + " has signature '" + (name ? name : "") +
                    "', expected '" + expected_signature(routines[i]) + "')";
        return la.status;
      }
      found[i] = PyCapsule_GetPointer(raw, name);
      if (!found[i]) throw py::error_already_set();
    }
  } catch (py::error_already_set& e) {
    la.status = std::string("eigen (reading SciPy's BLAS failed: ") + e.what() + ")";
    PyErr_Clear();
    return la.status;
  }
  la.dsyrk = reinterpret_cast<Linalg::dsyrk_t>(found[0]);
  la.dgemm = reinterpret_cast<Linalg::dgemm_t>(found[1]);
  la.dsyevd = reinterpret_cast<Linalg::dsyevd_t>(found[2]);
  la.dsyevr = reinterpret_cast<Linalg::dsyevr_t>(found[3]);
  la.set_threads_local = find_openblas_threads_local();
  la.status = "scipy-openblas";
  return la.status;
}

void load_scipy_linalg() {
  try {
    py::object blas = py::module_::import("scipy.linalg.cython_blas").attr("__pyx_capi__");
    py::object lapack = py::module_::import("scipy.linalg.cython_lapack").attr("__pyx_capi__");
    load_linalg(blas, lapack);
  } catch (py::error_already_set& e) {
    linalg().status = std::string("eigen (SciPy's BLAS could not be imported: ") + e.what() + ")";
    PyErr_Clear();
  }
}

// Shared by ped_forces and ped_step: one step's class displacements.
PedForces ped_forces_of(const Features& X, const std::int64_t* y, Index n_classes, const Vec& center,
                        const Vec& scale, double radius, double elastic, double time_step) {
  return dispatch(X,
                  [&](auto view) { return ped_forces(view, y, n_classes, center, scale, radius, elastic, time_step); });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  // The constants that define the scores (cpp/constants.hpp), read by the Python layers (pedrank/_constants.py).
  m.attr("LOGME_MAX_ITERATIONS") = constants::LOGME_MAX_ITERATIONS;
  m.attr("LOGME_TOLERANCE") = constants::LOGME_TOLERANCE;
  m.attr("LOGME_EPSILON") = constants::LOGME_EPSILON;
  m.attr("LOGME_RANK_TOLERANCE") = constants::LOGME_RANK_TOLERANCE;
  m.attr("SFDA_POWER_ROUNDS") = constants::SFDA_POWER_ROUNDS;
  m.attr("SFDA_MIN_SHRINKAGE") = constants::SFDA_MIN_SHRINKAGE;
  m.attr("SFDA_ZERO_SCATTER_FACTOR") = constants::SFDA_ZERO_SCATTER_FACTOR;
  m.attr("GBC_VARIANCE_FLOOR") = constants::GBC_VARIANCE_FLOOR;
  m.attr("PED_SCALE_FLOOR") = constants::PED_SCALE_FLOOR;
  m.doc() = "pedrank compiled kernels (C++17/Eigen). See TEAM.md's kernel contract for the semantics.";
  load_scipy_linalg();
  // Bad input and internal failures (std::invalid_argument) surface as pedrank's own ValueError subclass, like the
  // errors of the Python layer; plain ValueError when pedrank._validation cannot be imported.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyObject* type = PyExc_ValueError;
      py::object cls;
      try {
        cls = py::module_::import("pedrank._validation").attr("PedrankValueError");
        type = cls.ptr();
      } catch (py::error_already_set&) {
        PyErr_Clear();
      }
      PyErr_SetString(type, e.what());
    }
  });

  m.def(
      "class_means",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const std::int64_t* y = labels.data();
        auto [counts, means] = dispatch(X, [&](auto view) {
          IVec counts = count_labels(y, view.n, n_classes);
          return std::make_pair(counts, means_from_sums(class_sums(view, y, n_classes), counts));
        });
        return py::make_tuple(to_numpy(counts), to_numpy(means));
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"),
      "(counts int64[C], means float64[C, D]) per class; an empty class has mean 0.");

  m.def(
      "covariance",
      [](const py::object& Xo) {
        const Features X = as_features(Xo);
        if (X.n < 1) throw std::invalid_argument("X must have at least one row, got 0");
        auto [mean, cov] = dispatch(X, [&](auto view) {
          SerialScope serial(linalg().use_syrk(view.d, view.n));
          const Vec mean = (transpose_times(view, Mat::Ones(view.n, 1)) / static_cast<double>(view.n)).col(0);
          return std::make_pair(mean, centred_covariance(view, mean));
        });
        return py::make_tuple(to_numpy(mean), to_numpy(cov));
      },
      py::arg("X"), "(mean float64[D], cov float64[D, D]): population covariance (divides by N), centred first.");

  m.def(
      "logme",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes, const py::object& targets_o,
         bool exact_dimension) {
        const Features X = as_features(Xo);
        LabelArray labels;
        py::array_t<double, py::array::c_style | py::array::forcecast> targets;
        const std::int64_t* y = nullptr;
        const double* t = nullptr;
        Index K = n_classes;
        if (targets_o.is_none()) {
          labels = as_labels(labels_o, X.n);
          y = labels.data();
        } else {
          targets = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(targets_o);
          if (!targets || targets.ndim() != 2 || targets.shape(0) != X.n)
            throw std::invalid_argument("targets must be 2-D float64 with " + std::to_string(X.n) +
                                        " rows (n_samples, n_targets)");
          t = targets.data();
          K = targets.shape(1);
        }
        LogMEResult r = dispatch(X, [&](auto view) { return logme(view, y, n_classes, t, K, exact_dimension); });
        return py::make_tuple(to_numpy(r.evidence), to_numpy(r.alpha), to_numpy(r.beta), to_numpy(r.weights));
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"), py::arg("targets") = py::none(),
      py::arg("exact_dimension") = false,
      "(evidence[K], alpha[K], beta[K], weights[D, K]). targets None: classification (K = n_classes).");

  m.def(
      "sfda_fit",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes, double shrinkage) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const std::int64_t* y = labels.data();
        LdaFit fit = dispatch(X, [&](auto view) { return sfda_fit(view, y, n_classes, shrinkage); });
        return py::make_tuple(to_numpy(fit.coef), to_numpy(fit.intercept), fit.shrinkage);
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"),
      py::arg("shrinkage") = std::numeric_limits<double>::quiet_NaN(),
      "(coef[C, D], intercept[C], shrinkage): shrinkage LDA; shrinkage NaN = the authors' adaptive rule.");

  m.def(
      "sfda_score",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes, double shrinkage) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const std::int64_t* y = labels.data();
        SfdaScore s = dispatch(X, [&](auto view) { return sfda_score(view, y, n_classes, shrinkage); });
        return py::make_tuple(s.score, s.shrinkage);
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"),
      py::arg("shrinkage") = std::numeric_limits<double>::quiet_NaN(),
      "(score, shrinkage): SFDA with ConfMix.");

  m.def(
      "gbc",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes, Index n_components, bool diagonal,
         bool exact_logdet) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const std::int64_t* y = labels.data();
        return dispatch(X, [&](auto view) { return gbc(view, y, n_classes, n_components, diagonal, exact_logdet); });
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"), py::arg("n_components") = 64,
      py::arg("diagonal") = false, py::arg("exact_logdet") = false, "GBC score (<= 0, higher is better).");

  m.def(
      "mean_std",
      [](const py::object& Xo) {
        const Features X = as_features(Xo);
        auto [mean, sd] = dispatch(X, [&](auto view) { return mean_std(view); });
        return py::make_tuple(to_numpy(mean), to_numpy(sd));
      },
      py::arg("X"),
      "(mean float64[D], std float64[D]): column means and population standard deviations (PED's rescaling "
      "statistics), one pass, O(D) memory.");

  m.def(
      "class_moments",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const ClassMoments cm = dispatch(X, [&](auto view) { return class_moments(view, labels.data(), n_classes); });
        return py::make_tuple(to_numpy(cm.counts), to_numpy(cm.mean), to_numpy(cm.var));
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"),
      "(counts int64[C], means float64[C, D], variances float64[C, D]): class sizes, means and per-column "
      "population variances, one pass over X, O(C*D) memory.");

  m.def(
      "ped_pair_forces",
      [](const py::object& means_o, const py::object& radii_o, double radius, double elastic, double time_step) {
        auto means = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(means_o);
        if (!means || means.ndim() != 2 || means.shape(0) < 1 || means.shape(1) < 1)
          throw std::invalid_argument("means must be a non-empty 2-D float array (n_classes, n_features)");
        const RowMat mu = Eigen::Map<const RowMat>(means.data(), means.shape(0), means.shape(1));
        const Vec R = as_vector(radii_o, mu.rows(), "radii");
        PedForces f;
        {
          py::gil_scoped_release release;
          f = ped_pair_forces(mu, R, radius, elastic, time_step);
        }
        return py::make_tuple(to_numpy(f.displacement), f.energy, f.n_coincident);
      },
      py::arg("means"), py::arg("radii"), py::arg("radius") = 0.6, py::arg("elastic") = 1.0,
      py::arg("time_step") = 0.1,
      "(displacement[C, D], energy, n_coincident) of classes with rescaled means[C, D] and radii[C]: the pairwise "
      "part of a PED step, no pass over the features.");

  m.def(
      "ped_forces",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes, const py::object& center_o,
         const py::object& scale_o, double radius, double elastic, double time_step) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const PedForces f = ped_forces_of(X, labels.data(), n_classes, as_vector(center_o, X.d, "center"),
                                          as_vector(scale_o, X.d, "scale"), radius, elastic, time_step);
        return py::make_tuple(to_numpy(f.displacement), f.energy, f.n_coincident);
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"), py::arg("center"), py::arg("scale"),
      py::arg("radius") = 0.6, py::arg("elastic") = 1.0, py::arg("time_step") = 0.1,
      "(displacement[C, D] (rescaled units), energy, n_coincident) of one PED step; one pass over X.");

  m.def(
      "ped_apply",
      [](const py::object& Xo, const py::object& labels_o, const py::object& displacement_o,
         const py::object& scale_o, const py::object& out_o) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const RowMat displacement = as_displacement(displacement_o, X.d);
        count_labels(labels.data(), X.n, displacement.rows());
        const Vec scale = as_vector(scale_o, X.d, "scale");
        py::array out = as_output(out_o, X);
        apply_into(X, labels.data(), displacement, scale, out);
        return out;
      },
      py::arg("X"), py::arg("labels"), py::arg("displacement"), py::arg("scale"), py::arg("out"),
      "Writes X + displacement[labels] * scale into out (X's shape, float32 or float64, writable; may be X itself "
      "for an in-place update) and returns out.");

  m.def(
      "ped_step",
      [](const py::object& Xo, const py::object& labels_o, Index n_classes, const py::object& center_o,
         const py::object& scale_o, double radius, double elastic, double time_step) {
        const Features X = as_features(Xo);
        const LabelArray labels = as_labels(labels_o, X.n);
        const std::int64_t* y = labels.data();
        const Vec scale = as_vector(scale_o, X.d, "scale");
        const PedForces f =
            ped_forces_of(X, y, n_classes, as_vector(center_o, X.d, "center"), scale, radius, elastic, time_step);
        // output in the input's layout when that is Fortran order, else C order
        const bool fortran = X.n > 1 && X.row_stride == 1 && X.col_stride == X.n;
        py::array moved;
        if (fortran)
          moved = X.is_float32 ? py::array(py::array_t<float, py::array::f_style>({X.n, X.d}))
                               : py::array(py::array_t<double, py::array::f_style>({X.n, X.d}));
        else
          moved = X.is_float32 ? py::array(py::array_t<float>({X.n, X.d})) : py::array(py::array_t<double>({X.n, X.d}));
        apply_into(X, y, f.displacement, scale, moved);
        return py::make_tuple(moved, to_numpy(f.displacement), f.energy, f.n_coincident);
      },
      py::arg("X"), py::arg("labels"), py::arg("n_classes"), py::arg("center"), py::arg("scale"),
      py::arg("radius") = 0.6, py::arg("elastic") = 1.0, py::arg("time_step") = 0.1,
      "(moved X (new array, X's dtype), displacement[C, D] (rescaled units), energy, n_coincident): ped_forces "
      "then ped_apply into a new array.");

  m.def(
      "set_blas", [](bool enabled) { linalg().enabled = enabled; }, py::arg("enabled"),
      "Use SciPy's OpenBLAS/LAPACK for the Gram and eigen-decompositions (default) or Eigen only (for benchmarks).");
  m.def(
      "set_eig_threads", [](int n) { linalg().eig_threads = n; }, py::arg("n"),
      "OpenBLAS threads for the symmetric eigensolvers (default: PEDRANK_EIG_THREADS, else 0 = OpenBLAS's own "
      "count).");
  m.def("blas_backend", []() -> std::string {
    const Linalg& la = linalg();
    return la.enabled && la.available() ? "scipy-openblas" : "eigen";
  });
  m.def(
      "blas_status", []() { return linalg().status; },
      "'scipy-openblas', or why the kernels fall back to Eigen (e.g. a capsule signature that differs from the "
      "prototype called through).");
  m.def(
      "openblas_threads_local", []() { return linalg().set_threads_local != nullptr; },
      "Whether OpenBLAS's per-thread thread count was found (the eigensolvers' thread setting needs it).");
  m.def(
      "_load_linalg",
      [](const py::object& blas_capi, const py::object& lapack_capi) { return load_linalg(blas_capi, lapack_capi); },
      py::arg("blas_capi"), py::arg("lapack_capi"),
      "Borrow BLAS/LAPACK from two __pyx_capi__-like dicts of capsules (done once at import with SciPy's); returns "
      "the status. For tests: not safe while kernels run in other threads.");
  m.def("num_threads", []() { return max_threads(); }, "OpenMP threads the kernels use at most.");
  m.def(
      "set_threads", [](int n) { thread_override() = std::max(n, 0); }, py::arg("n"),
      "Threads every kernel call uses (0 = the policy: one thread below 2e6 feature entries, else the cores no "
      "other process is running on). Default: PEDRANK_THREADS, else 0.");
  m.def(
      "call_threads", [](Index n, Index d) { return call_threads(n, d); }, py::arg("n"), py::arg("d"),
      "The threads a call on n x d features would use now (the policy, for tests and show_config).");
}
