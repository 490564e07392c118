"""Shared fixtures: the authors' parity vectors and small random problems."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# The authors' vectors (tests/data, ../shared/vectors) were computed where OpenBLAS ran its Haswell kernels, and a
# few of their numbers follow the BLAS's rounding (PARC's label dissimilarity ties, PACTran and TransRate on
# rank-deficient features, the thread-count test's 1e-35 values): on a CPU where OpenBLAS picks its SkylakeX
# (AVX-512) kernels, 10 of those parity tests moved by 1e-9 to 6e-3. OPENBLAS_CORETYPE is read when NumPy first
# loads OpenBLAS, so it is set here, before this file imports NumPy (Linux x86-64 CPUs with AVX2, which run them).
# An explicit OPENBLAS_CORETYPE in the environment wins.


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


if platform.machine() in ("x86_64", "AMD64") and "numpy" not in sys.modules and _has_avx2():
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import numpy as np  # noqa: E402 (after OPENBLAS_CORETYPE)
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Hypothesis profiles. Under CI (CI=true, which .ci/run exports) the "ci" profile runs a fixed, derandomized set of
# examples, so CI passes or fails the same way on every run; locally the "dev" profile keeps exploring new random
# examples (and replays failures from .hypothesis/). HYPOTHESIS_PROFILE=ci|dev chooses one explicitly. The tests'
# own @settings must not set max_examples, deadline or derandomize, or they would override the profile.
MAX_EXAMPLES = 40
settings.register_profile(
    "ci",
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=MAX_EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def running_under_ci() -> bool:
    """True when the CI environment variable is set to anything but '', '0', 'false' or 'no'."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if running_under_ci() else "dev")
settings.load_profile(HYPOTHESIS_PROFILE)

# The one tolerance for the PED authors' numbers (tests/data/authors_*.npz: float64 outputs of their code), used by
# test_core_vectors, test_reference_vectors, test_backend_vectors, test_authors_public_api and
# test_rank_deficient_field. Why 1e-8: pedrank computes the same quantities by other routes (one-pass moments
# instead of centred copies, Cholesky or a Gram eigen-decomposition instead of an SVD, BLAS builds, torch), so it
# cannot be bitwise equal; measured over every case of both vector files and all three implementations (core,
# torch, reference) the largest relative difference is 3.1e-12 (LogME on rank-deficient features; SFDA 6e-15).
# 1e-8 leaves three orders of magnitude for other machines and BLAS builds, and still catches any change of
# algorithm or constant: those move the scores by 1e-6 and more (the old LogME default on rank-deficient
# features was off by 3-97%).
AUTHORS_RTOL = 1e-8
# The one exception: LogME regression on the vectors' second target, an exact linear function of X. Its residual
# |t|^2 - |u^T t|^2 is a difference of two numbers ~1e3 whose true value is 0, so the evidence follows rounding
# noise: perturbing X by 1 ulp moves the authors' own algorithm by up to 3.4e-8, and the core and torch differ
# from the stored numbers by up to 4.6e-8 and 5.2e-8 (the reference, a line-by-line port, is bitwise equal here).
AUTHORS_LOGME_REGRESSION_RTOL = 1e-7

_VECTOR_CANDIDATES = [
    os.environ.get("PEDRANK_VECTORS", ""),
    str(Path(__file__).resolve().parent / "data" / "authors_ped_metrics.npz"),
]


def _vectors_path() -> Path:
    for candidate in _VECTOR_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("tests/data/authors_ped_metrics.npz is missing")


@pytest.fixture(scope="session")
def vectors():
    """The authors' outputs on 8 deterministic cases (see tests/data/README.md)."""
    with np.load(_vectors_path()) as data:
        return {key: data[key] for key in data.files}


CASES = list(range(1, 9))


def make_problem(n_samples, n_features, n_classes, *, seed=0, separation=1.0, imbalance=False, dtype=np.float64):
    """Gaussian class clusters; every class has at least one sample."""
    rng = np.random.default_rng(seed)
    if imbalance:
        weights = rng.dirichlet(np.full(n_classes, 0.5))
        labels = rng.choice(n_classes, size=n_samples, p=weights)
    else:
        labels = rng.integers(0, n_classes, size=n_samples)
    labels[:n_classes] = np.arange(n_classes)
    centres = rng.normal(scale=separation, size=(n_classes, n_features))
    features = centres[labels] + rng.normal(size=(n_samples, n_features))
    return features.astype(dtype), labels


def blobs(n_samples, n_features, n_classes, spread, seed):
    """Balanced classes (sample i in class i % C) around Gaussian centres of scale ``spread``, unit noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    centres = rng.normal(scale=spread, size=(n_classes, n_features))
    return centres[labels] + rng.normal(size=(n_samples, n_features)), labels


def clustered(n_samples, n_features, n_clusters, spread, seed, *, relu=False):
    """Blobs with per-dimension noise scales (so covariances are not multiples of the identity): NLEEP's mixtures."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_clusters, n_samples)
    scales = rng.uniform(0.2, 2.0, size=n_features)
    features = rng.normal(scale=spread, size=(n_clusters, n_features))[labels]
    features += rng.normal(size=(n_samples, n_features)) * scales
    return np.maximum(features, 0.0) if relu else features


# clustered()'s arguments (n_samples, n_features, components, spread, relu) for the mixture tests (test_nleep_em,
# test_nleep_torch): low dimensions (every pair evaluated), high dimensions with separated components (most pairs
# skipped), overlapping ones (few skipped), post-ReLU features, soft mixtures.
MIXTURE_PROBLEMS = [
    (300, 3, 10, 1.0, False),
    (400, 12, 15, 0.3, False),
    (500, 8, 6, 5.0, True),
    (400, 40, 10, 0.5, False),
    (400, 40, 10, 2.0, True),
    (300, 64, 30, 3.0, False),
    (500, 40, 8, 0.1, False),
    (200, 32, 40, 1.0, False),
]


def write_class_images(root, sizes, *, seed, name="{}.png", n_classes=3):
    """An image folder: ``root/class{c}/`` holds one RGB PNG per (height, width) of ``sizes``, named
    ``name.format(i)``, of noise whose brightness grows with the class. Returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        (root / f"class{c}").mkdir(parents=True)
        for i, (height, width) in enumerate(sizes):
            pixels = (rng.random((height, width, 3)) * 90 + 60 * c).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / name.format(i))
    return root


ZOO_SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"


def zoo_modules(*names):
    """Import benchmarks/zoo's scripts (a folder of scripts, not a package) by name, with Keras on torch (it must
    not look for TensorFlow); the folder is on sys.path only while they import."""
    import importlib

    os.environ.setdefault("KERAS_BACKEND", "torch")
    sys.path.insert(0, str(ZOO_SCRIPTS))
    try:
        return tuple(importlib.import_module(name) for name in names)
    finally:
        sys.path.remove(str(ZOO_SCRIPTS))


def zoo_modules_or_skip(*names):
    """zoo_modules, or skip the test (module) with the reason when the zoo's packages are absent (CI does not
    install the zoo: `bash benchmarks/zoo/setup.sh` does)."""
    try:
        return zoo_modules(*names)
    except ModuleNotFoundError as exc:
        pytest.skip(f"zoo packages not installed: {exc} (bash benchmarks/zoo/setup.sh)")


def skip_unless_installed(modules):
    """Skip the test, naming what is missing, unless every module of ``modules`` can be imported."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"zoo packages not installed: {missing} (bash benchmarks/zoo/setup.sh)")
