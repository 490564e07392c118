"""The feature scores other than LogME and SFDA on the authors' rank-deficient vectors.

Five cases (tests/data/authors_rank_deficient.npz: constant pixels, dead ReLU units, N < D, each
ReLU/digits case at two scales). For GBC, NLEEP, PARC, H-score, regularised H-score and TransRate:
the compiled core (NumPy input), the torch backend (a CPU tensor) and ``pedrank.reference`` agree;
NLEEP and PARC's default equal the PED authors' code (tests/data/authors_rank_deficient_field.npz,
produced as its README says); the differences that remain (PARC's exact=True against the authors,
TransRate's D x D log-determinants, GBC's absolute variance floor) are checked to be what docs/parity.md
says they are.
LEEP and NCE score a source model's predictions, not features: they do not apply here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import pedrank
from conftest import AUTHORS_RTOL  # tests/ is on sys.path under pytest
from pedrank import reference

torch = pytest.importorskip("torch")

DATA = Path(__file__).resolve().parent / "data"
CASES = ["digits_pixels", "digits_pixels_x16", "relu_dead", "relu_dead_x100", "relu_wide"]
UNIT_CASES = ["digits_pixels", "relu_dead", "relu_wide"]
SCALED_PAIRS = [("digits_pixels", "digits_pixels_x16", 16.0), ("relu_dead", "relu_dead_x100", 100.0)]
FEATURE_SCORES = ["gbc", "nleep", "parc", "h_score", "regularized_h_score", "transrate"]
# conftest's one tolerance for the authors' numbers, also held between the three implementations here.
RTOL = AUTHORS_RTOL
# pedrank.reference.transrate takes log det of the D x D matrix I + a Z^T Z (the authors' form) even when
# a class has fewer rows than D; on these vectors that costs it up to 1.1e-8 (see docs/parity.md).
REFERENCE_TRANSRATE_RTOL = 1e-7


@pytest.fixture(autouse=True)
def one_thread():
    # scikit-learn's k-means (NLEEP's mixture initialisation) crawls when its OpenMP threads compete with
    # other processes for the cores (13 s against 2.5 s on a loaded 2-core machine); the numbers are the same.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def field():
    arrays = {}
    for name in ("authors_rank_deficient.npz", "authors_rank_deficient_field.npz"):
        with np.load(DATA / name) as data:
            arrays.update({key: data[key] for key in data.files})
    return arrays


def case(field, name):
    return field[f"{name}__X"], field[f"{name}__y"]


def three_ways(score, features, labels, **options):
    """(core, torch backend, reference) values of ``score``."""
    core = getattr(pedrank, score)(features, labels, backend="numpy", **options)
    on_torch = getattr(pedrank, score)(torch.as_tensor(features), labels, **options)
    ref = getattr(reference, score)(features, labels, **options)
    return core, on_torch, ref


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("score", FEATURE_SCORES)
def test_core_torch_and_reference_agree(field, name, score):
    features, labels = case(field, name)
    core, on_torch, ref = three_ways(score, features, labels)
    assert np.isfinite(core)
    np.testing.assert_allclose(on_torch, core, rtol=RTOL)
    rtol = REFERENCE_TRANSRATE_RTOL if score == "transrate" and name not in UNIT_CASES else RTOL
    np.testing.assert_allclose(ref, core, rtol=rtol)


def test_leep_and_nce_do_not_score_features():
    from pedrank.scores.registry import scores

    assert {name for name, entry in scores().items() if entry.inputs == "predictions"} == {"leep", "nce"}
    assert {"logme", "sfda", "leep", "nce"}.isdisjoint(FEATURE_SCORES)


# --- NLEEP: the authors' numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_nleep_equals_the_authors_code(field, name):
    # The authors' mixture is unseeded; the stored numbers were produced after np.random.seed(0), the
    # state pedrank's default random_state=0 gives scikit-learn.
    features, labels = case(field, name)
    expected = float(field[f"{name}__nleep"])
    assert pedrank.nleep(features, labels) == pytest.approx(expected, rel=RTOL)
    assert pedrank.nleep(torch.as_tensor(features), labels) == pytest.approx(expected, rel=RTOL)


# --- PARC: the authors' numbers by default, the exact form behind exact=True -------------------------------


@pytest.mark.parametrize("name", CASES)
def test_parc_default_equals_the_authors_code(field, name):
    # Their randomized PCA (seed 1919, one power iteration) and their label dissimilarity 1 - corrcoef(onehot),
    # whose rounding noise their Spearman correlation ranks apart.
    features, labels = case(field, name)
    expected = float(field[f"{name}__parc"])
    for value in three_ways("parc", features, labels):
        assert value == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("unit, scaled, factor", SCALED_PAIRS)
def test_parc_is_scale_invariant(field, unit, scaled, factor, exact):
    np.testing.assert_allclose(
        pedrank.parc(*case(field, scaled), exact=exact), pedrank.parc(*case(field, unit), exact=exact), rtol=RTOL
    )


def test_authors_label_dissimilarity_is_not_two_valued_on_this_blas(field):
    # What makes the default BLAS-dependent: in exact arithmetic 1 - corrcoef(onehot) takes two values.
    from pedrank.scores.parc import authors_label_dissimilarity

    _, labels = case(field, "digits_pixels")
    values = np.unique(authors_label_dissimilarity(labels)[np.triu_indices(labels.shape[0], 1)])
    if values.shape[0] == 2:
        pytest.skip("this NumPy/BLAS computes 1 - corrcoef(onehot) without rounding noise")
    n_classes = np.unique(labels).shape[0]
    np.testing.assert_allclose(values, np.where(values < 0.5, 0.0, n_classes / (n_classes - 1)), atol=1e-15)


@pytest.mark.parametrize("name", UNIT_CASES)
def test_parc_exact_differs_from_the_authors_by_the_two_documented_causes_only(field, name, monkeypatch):
    features, labels = case(field, name)
    authors = float(field[f"{name}__parc"])
    exact = pedrank.parc(features, labels, exact=True)
    assert abs(exact / authors - 1) > 1e-3  # measured 3.3e-3 (digits, ReLU), 6.1e-2 (N < D)
    np.testing.assert_allclose(reference.parc(features, labels, exact=True), exact, rtol=RTOL)
    # The default with the exact PCA and exact label ties is the exact form: nothing else differs.
    module = sys.modules["pedrank.scores.parc"]
    monkeypatch.setattr(module, "AUTHORS_PCA", {"svd_solver": "full"})

    def two_valued(encoded):
        return np.round(1.0 - np.corrcoef(np.eye(encoded.max() + 1)[encoded]), 12)

    monkeypatch.setattr(module, "authors_label_dissimilarity", two_valued)
    np.testing.assert_allclose(pedrank.parc(features, labels), exact, rtol=RTOL)


def test_parc_default_and_exact_rank_the_cases_alike(field):
    default = np.array([pedrank.parc(*case(field, name)) for name in UNIT_CASES])
    exact = np.array([pedrank.parc(*case(field, name), exact=True) for name in UNIT_CASES])
    np.testing.assert_array_equal(np.argsort(exact), np.argsort(default))


def test_parc_default_equals_the_authors_code_on_the_parity_vectors():
    # tests/data/authors_parc.npz: their PARC_Score on the cases of authors_ped_metrics.npz with D >= 32
    # (tests/data/authors_parc.md). Full-rank features, flat spectra: one power iteration is a coarse
    # approximation there, and the exact form differs by up to 0.5 relative.
    with np.load(DATA / "authors_parc.npz") as oracle, np.load(DATA / "authors_ped_metrics.npz") as vectors:
        assert len(oracle.files) == 3
        for key in oracle.files:
            prefix = key.split("__")[0]
            features, labels = vectors[f"{prefix}_X"], vectors[f"{prefix}_y"]
            expected = float(oracle[key])
            for value in three_ways("parc", features, labels):
                assert value == pytest.approx(expected, rel=RTOL), key


# --- H-score: the pseudo-inverse's cutoff ----------------------------------------------------------------


def population_covariance(x):
    centred = x - x.mean(axis=0)
    return centred.T @ centred / x.shape[0]


def class_mean_features(x, labels):
    g = np.empty_like(x)
    for c in np.unique(labels):
        g[labels == c] = x[labels == c].mean(axis=0)
    return g


@pytest.mark.parametrize("name", ["digits_pixels", "relu_dead"])
def test_h_score_ignores_the_null_columns(field, name):
    # Constant pixels and dead units are exactly zero columns: the exact-arithmetic H-score is that of
    # the remaining columns. (Not so the regularised one: Ledoit-Wolf's target tr(S)/D I depends on D.)
    features, labels = case(field, name)
    varying = features[:, np.ptp(features, axis=0) > 0]
    assert varying.shape[1] < features.shape[1]
    np.testing.assert_allclose(pedrank.h_score(features, labels), pedrank.h_score(varying, labels), rtol=RTOL)


def test_h_score_of_features_that_fit_any_labelling_is_classes_minus_one(field):
    # N < D and rank N: the class means are in the span of the kept eigen-directions, so
    # H = tr(S^+ S_between) = C - 1; one rounding-noise direction kept would add to it.
    features, labels = case(field, "relu_wide")
    assert np.linalg.matrix_rank(features.astype(np.float64)) == features.shape[0]
    n_classes = np.unique(labels).shape[0]
    assert pedrank.h_score(features, labels) == pytest.approx(n_classes - 1, rel=1e-10)


@pytest.mark.parametrize("unit, scaled, factor", SCALED_PAIRS)
def test_h_scores_are_scale_invariant(field, unit, scaled, factor):
    for score in (pedrank.h_score, pedrank.regularized_h_score):
        np.testing.assert_allclose(score(*case(field, scaled)), score(*case(field, unit)), rtol=RTOL)


@pytest.mark.parametrize("name", CASES)
def test_h_score_equals_the_rcond_1e15_pseudo_inverse_when_the_spectrum_has_a_gap(field, name):
    # The public H-score takes pinv(cov(f), rcond=1e-15); pedrank cuts at eps * D * largest. They agree
    # whenever no singular value of cov(f) lies between the two cutoffs (measured on these vectors:
    # the largest rounding-noise one is 3.0e-16 of the largest, relu_wide).
    features, labels = case(field, name)
    x = features.astype(np.float64)
    covariance = population_covariance(x)
    singular = np.linalg.svd(covariance, compute_uv=False)
    relative = singular / singular[0]
    between = (relative > 1e-15) & (relative <= np.finfo(np.float64).eps * x.shape[1])
    if between.any():
        pytest.skip(f"{int(between.sum())} singular value(s) between the cutoffs with this LAPACK")
    between_class = population_covariance(class_mean_features(x, labels))
    authors_form = np.trace(np.linalg.pinv(covariance, rcond=1e-15) @ between_class)
    np.testing.assert_allclose(pedrank.h_score(features, labels), authors_form, rtol=RTOL)


def test_h_score_of_duplicated_columns_is_that_of_the_distinct_ones():
    # 8 informative columns, each copied 200 times at other scales (1600 columns, 60 samples): the
    # covariance's rounding noise reaches ~1.6e-15 of its largest eigenvalue, above rcond=1e-15, so the
    # rcond=1e-15 pseudo-inverse keeps 12 directions and inverts noise (measured 0.85321 against the exact
    # 0.85495). pedrank's cutoff keeps the 8 real ones.
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    base = rng.normal(size=(60, 8)) + np.eye(3, 8)[labels]
    copies = np.hstack([base * rng.uniform(0.1, 10.0, size=8) for _ in range(200)]) + 100.0
    np.testing.assert_allclose(pedrank.h_score(copies, labels), pedrank.h_score(base, labels), rtol=RTOL)


# --- TransRate: log-determinants of rank-deficient Gram matrices -------------------------------------------


def extended_logdet_identity_plus(z, scale):
    """log det(I + scale Z^T Z) in extended precision, through the smaller Gram matrix (Sylvester)."""
    z = z.astype(np.longdouble)
    gram = z @ z.T if z.shape[0] < z.shape[1] else z.T @ z
    matrix = scale * gram
    matrix[np.diag_indices_from(matrix)] += 1
    total = np.longdouble(0)
    for k in range(matrix.shape[0]):  # Cholesky, column by column
        pivot = np.sqrt(matrix[k, k])
        total += np.log(pivot)
        column = matrix[k + 1 :, k] / pivot
        matrix[k + 1 :, k + 1 :] -= np.outer(column, column)
    return 2 * total


def extended_transrate(features, labels, eps, normalization):
    z = features.astype(np.longdouble)
    z = z - z.mean(axis=0)
    n_samples, n_features = z.shape
    classes = np.unique(labels)

    def rate(rows):
        numerator = n_features if normalization == "paper" else 1
        return extended_logdet_identity_plus(rows, numerator / (rows.shape[0] * eps)) / 2

    weights = [np.mean(labels == c) if normalization == "paper" else 1 / classes.shape[0] for c in classes]
    return float(rate(z) - sum(w * rate(z[labels == c]) for w, c in zip(weights, classes)))


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="long double is double on this platform")
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("normalization", ["paper", "authors"])
def test_transrate_core_and_torch_match_extended_precision(field, name, normalization):
    features, labels = case(field, name)
    core, on_torch, ref = three_ways("transrate", features, labels, normalization=normalization)
    exact = extended_transrate(features, labels, 1e-4, normalization)
    np.testing.assert_allclose(core, exact, rtol=1e-10)
    np.testing.assert_allclose(on_torch, exact, rtol=1e-10)
    # The reference's D x D log-determinant keeps the rounding noise of a class's null directions,
    # amplified by a = D / (n_c eps): its error grows with the square of the feature scale.
    np.testing.assert_allclose(ref, exact, rtol=RTOL if name in UNIT_CASES else REFERENCE_TRANSRATE_RTOL)


# --- GBC: the spec is the oracle; its variance floor is absolute ----------------------------------------


def test_gbc_scale_dependence_is_its_absolute_variance_floor(field, monkeypatch):
    unit, labels = case(field, "digits_pixels")
    scaled, _ = case(field, "digits_pixels_x16")
    np.testing.assert_array_equal(scaled, 16 * unit)
    # The three constant pixels give principal directions of zero variance, floored at 1e-4.
    difference = abs(pedrank.gbc(scaled, labels) / pedrank.gbc(unit, labels) - 1)
    assert 1e-7 < difference < 1e-4
    monkeypatch.setattr(sys.modules["pedrank.reference.gbc"], "VARIANCE_FLOOR", 1e-4 * 16**2)
    np.testing.assert_allclose(reference.gbc(scaled, labels), pedrank.gbc(unit, labels), rtol=1e-12)


@pytest.mark.parametrize("name", ["relu_dead", "relu_wide"])
def test_gbc_without_floored_directions_is_scale_invariant(field, name):
    features, labels = case(field, name)
    features = features.astype(np.float64)
    np.testing.assert_allclose(pedrank.gbc(100 * features, labels), pedrank.gbc(features, labels), rtol=1e-10)
