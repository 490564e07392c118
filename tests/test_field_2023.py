"""ETran, NCTI, PACTran and the k-NN estimator against their authors' code (tests/data/authors_2023_scores.npz,
provenance in tests/data/authors_2023_scores.md), the references, torch, validation, PED and pools."""

from __future__ import annotations

import numpy as np
import pytest
import threadpoolctl

import pedrank
import pedrank.scores.scoring
from pedrank import reference
from pedrank.reference.etran import etran_terms as reference_etran_terms
from pedrank.reference.ncti import ncti_terms as reference_ncti_terms
from pedrank.scores.etran import etran_pool, etran_terms
from pedrank.scores.ncti import ncti_pool, ncti_terms

DATA = "tests/data/"
ORACLE = np.load(DATA + "authors_2023_scores.npz")
PED = np.load(DATA + "authors_ped_metrics.npz")
DEFICIENT = np.load(DATA + "authors_rank_deficient.npz")
SMALL = [f"s{k}" for k in range(1, 9)]
WIDE = ["digits_pixels", "digits_pixels_x16", "relu_dead", "relu_dead_x100", "relu_wide"]
RTOL = 1e-8


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    # the references' L-BFGS-B (PACTran, ETran) and k-NN products run in NumPy: on a loaded machine OpenBLAS on
    # every core makes them 30x slower (pedrank's own paths follow its thread policy, BENCHMARKS.md)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


def case(name):
    if name in SMALL:
        return PED[f"{name}_X"], PED[f"{name}_y"]
    return DEFICIENT[f"{name}__X"].astype(np.float64), DEFICIENT[f"{name}__y"]


def close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=0)


# --- parity with the authors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SMALL + ["digits_pixels", "relu_dead_x100", "relu_wide"])
def test_etran_terms_equal_the_authors(name):
    X, y = case(name)
    energy, lda, pac = reference_etran_terms(X, y, regression=True)
    authors_energy = ORACLE[f"{name}__etran_energy"]
    if np.isfinite(authors_energy):
        close(energy, authors_energy)
    else:  # the authors average no energies below N = 200; pedrank averages the lowest one
        assert X.shape[0] < 200 and energy == pytest.approx(np.min(np.log(np.exp(X).sum(axis=1))), rel=1e-14)
    close(lda, ORACLE[f"{name}__etran_lda"])
    close(pac, ORACLE[f"{name}__etran_pac"], rtol=1e-10 if abs(pac) > 1e-2 else 1e-9)
    close(etran_terms(X, y, regression=True), (energy, lda, pac))


@pytest.mark.parametrize("name", SMALL + ["digits_pixels", "s1_binary", "s3_binary"])
def test_ncti_terms_equal_the_authors(name):
    X, y = case(name.removesuffix("_binary"))
    if name.endswith("_binary"):
        y = y % 2
    close(reference_ncti_terms(X, y), ORACLE[f"{name}__ncti_terms"])
    close(ncti_terms(X, y), ORACLE[f"{name}__ncti_terms"])


@pytest.mark.parametrize("name", ["relu_dead", "relu_wide"])
def test_ncti_differs_from_the_authors_randomized_pca_by_little(name):
    # scikit-learn's 'auto' PCA is an unseeded randomized SVD on these shapes (the oracle seeded it with 0)
    X, y = case(name)
    terms = np.array(ncti_terms(X, y))
    error = np.max(np.abs(terms / ORACLE[f"{name}__ncti_terms"] - 1))
    assert 1e-6 < error < 1e-2


# Unconverged L-BFGS-B paths on badly scaled features follow the last bits of each product, and OpenBLAS's
# products round differently on one thread and on two: the authors' numbers for these were made with two.
BLAS_SENSITIVE = ["digits_pixels_x16", "relu_dead_x100"]


@pytest.mark.parametrize("name", SMALL + WIDE)
def test_pactran_equals_the_authors(name):
    X, y = case(name)
    probabilities = X / X.sum(axis=1, keepdims=True)
    if name in BLAS_SENSITIVE:
        # once, on the authors' two BLAS threads (30x slower on a loaded machine): the reference's first setting
        with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
            close(-reference.pactran(X, y), ORACLE[f"{name}__pac_gauss_1.0"][0], rtol=1e-10)
        close(pedrank.pactran(X, y), reference.pactran(X, y), rtol=1e-10)  # same thread count, same path
    else:
        for lda, grid in ((10.0, (1000.0, 100.0)), (1.0, (100.0, 10.0)), (0.1, (10.0, 1.0))):
            if name in WIDE and lda != 1.0:
                continue  # keep the run short: one lda_factor per wide case
            for s2, expected in zip(grid, ORACLE[f"{name}__pac_gauss_{lda}"]):
                close(-reference.pactran(X, y, lda_factor=lda, variance_factor=s2), expected, rtol=1e-10)
        close(-pedrank.pactran(X, y), ORACLE[f"{name}__pac_gauss_1.0"][0], rtol=1e-10)
    for prior in ("dirichlet", "gamma"):
        expected = ORACLE[f"{name}__pac_{'dir' if prior == 'dirichlet' else 'gamma'}_probs"]
        close(-pedrank.pactran(probabilities, y, prior=prior, probabilities=True), expected)
        close(-reference.pactran(probabilities, y, prior=prior, probabilities=True), expected)


@pytest.mark.parametrize("name", ["s1", "s5"])
def test_pactran_on_mixture_posteriors_equals_the_authors(name):
    X, y = case(name)
    close(-pedrank.pactran(X, y, prior="dirichlet"), ORACLE[f"{name}__pac_ndir"])
    close(-pedrank.pactran(X, y, prior="gamma"), ORACLE[f"{name}__pac_ngam"])


@pytest.mark.parametrize("name", SMALL + WIDE)
def test_knn_equals_the_authors(name):
    X, y = case(name)
    for k in (1, 3, 5):
        assert pedrank.knn(X, y, k=k) == reference.knn(X, y, k=k) == ORACLE[f"{name}__knn_k{k}"]


@pytest.mark.parametrize("name", ["s1", "s3"])
def test_knn_binary_and_regression_equal_the_authors(name):
    X, y = case(name)
    assert pedrank.knn(X, y % 2) == pytest.approx(ORACLE[f"{name}_binary__knn_k3"], rel=1e-12)
    accuracy = pedrank.knn(X, y % 2, binary="accuracy")
    assert accuracy != pedrank.knn(X, y % 2) and 0 < accuracy < 1
    close(pedrank.knn(X, PED[f"{name}_Yreg"][:, 0], regression=True), ORACLE[f"{name}_regression__knn_k3"], 1e-12)


def test_pools_equal_the_authors_normalisation():
    X, y = case("s1")
    pool = {"a": X, "b": X[:, :20].copy(), "c": np.sqrt(X), "d": X + ORACLE["pool__noise"]}
    for table, expected in ((etran_pool(pool, y), ORACLE["pool__etran"]), (ncti_pool(pool, y), ORACLE["pool__ncti"])):
        close([table.scores[m] for m in pool], expected, rtol=1e-9)
        assert table.models == [m for _, m in sorted(zip(-expected, pool))]
    # the pool dependence: dropping a model changes the others' NCTI
    smaller = ncti_pool({m: pool[m] for m in "abd"}, y).scores
    assert smaller["a"] != pytest.approx(ncti_pool(pool, y).scores["a"])


# --- public function vs reference, core and torch ---------------------------------------------------------------

SCORES = [("etran", {}), ("ncti", {}), ("pactran", {}), ("pactran", {"prior": "dirichlet"}), ("knn", {"k": 5})]


@pytest.mark.parametrize("metric,options", SCORES)
@pytest.mark.parametrize("name", ["s2", "s7", "relu_wide"])
def test_public_equals_reference(metric, options, name):
    X, y = case(name)
    if name == "relu_wide" and options.get("prior") == "dirichlet":
        pytest.skip("mixture of 30 components on 300 x 700: slow and adds nothing")
    expected = reference.score(X, y, metric, **options)
    close(pedrank.score(X, y, metric, **options), expected)
    torch = pytest.importorskip("torch")
    close(pedrank.score(torch.from_numpy(X), y, metric, **options), expected)


@pytest.mark.parametrize("metric", ["etran", "ncti", "pactran", "knn"])
def test_registered_everywhere_and_after_ped(metric):
    from pedrank.frontends.cli import main

    assert metric in pedrank.METRICS and metric in pedrank.scores.scoring.FEATURE_METRICS
    X, y = case("s3")
    plain = pedrank.score(X, y, metric)
    moved = pedrank.score(X, y, metric, ped=True)
    assert np.isfinite(moved) and moved != plain
    close(moved, reference.score(X, y, metric, ped=True), rtol=1e-7)
    table = pedrank.rank({"full": X, "half": X[:, : X.shape[1] // 2].copy()}, y, metric=metric, ped=True)
    assert sorted(table.models) == ["full", "half"] and all(np.isfinite(list(table.scores.values())))
    assert callable(main)


def test_cli_ranks_with_a_new_score(tmp_path, capsys):
    from pedrank.frontends.cli import main

    X, y = case("s3")
    for name, F in (("full", X), ("half", X[:, :5])):
        np.savez(tmp_path / f"{name}.npz", features=F, labels=y)
    code = main(["rank", str(tmp_path / "full.npz"), str(tmp_path / "half.npz"), "--metric", "knn", "--ped"])
    out = capsys.readouterr().out
    assert code in (0, None) and "knn" in out


# --- validation -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda X, y: pedrank.knn(X, y, k=0), "k: expected an integer >= 1, found 0"),
    (lambda X, y: pedrank.knn(X, y, k=len(y)), "k: expected an integer below"),
    (lambda X, y: pedrank.knn(X, y, distance="manhattan"), "distance: expected one of"),
    (lambda X, y: pedrank.knn(X, y, binary="auc"), "binary: expected one of"),
    (lambda X, y: pedrank.pactran(X, y, prior="beta"), "prior: expected one of"),
    (lambda X, y: pedrank.pactran(X, y, lda_factor=0), "lda_factor: expected a finite number > 0"),
    (lambda X, y: pedrank.pactran(X, y, probabilities=True), "probabilities: expected False"),
    (lambda X, y: pedrank.pactran(X, y, prior="gamma", probabilities=True), "rows that sum to 1"),
    (lambda X, y: pedrank.pactran(-X / X.sum(1)[:, None], y, prior="gamma", probabilities=True), "non-negative"),
    (lambda X, y: pedrank.etran(X, y, energy_fraction=0), "energy_fraction: expected a number in"),
    (lambda X, y: pedrank.etran(X, y, log="yes"), "log: expected True or False"),
    (lambda X, y: pedrank.ncti(X, y, n_components=0), "n_components: expected an integer >= 1"),
    (lambda X, y: pedrank.ncti(X, y[:-1]), "labels: found"),
    (lambda X, y: pedrank.knn(np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), y), "features"),
    (lambda X, y: etran_pool({"a": X}, y, weights=(1.0,)), "weights: expected 2 numbers"),
])
def test_validation_errors(call, match):
    X, y = case("s3")
    with pytest.raises(pedrank.PedrankValueError, match=match):
        call(X, y)


def test_etran_log_option_is_the_mean_log():
    X, y = case("s2")
    energy, lda = etran_terms(X, y)
    _, mean_log = etran_terms(X, y, log=True)
    assert mean_log < np.log(lda) and mean_log == pytest.approx(reference_etran_terms(X, y, log=True)[1], rel=1e-12)


def test_knn_never_builds_the_n_by_n_matrix(monkeypatch):
    X, y = case("digits_pixels")
    shapes = []

    def spying(real):
        def spy(a, *args, **kwargs):
            shapes.append(a.shape)
            return real(a, *args, **kwargs)
        return spy

    # every selection over distance blocks: argmin for small k, argpartition for large k and the float64 path
    monkeypatch.setattr(np, "argpartition", spying(np.argpartition))
    monkeypatch.setattr(np, "argmin", spying(np.argmin))
    assert pedrank.knn(X, y, block_size=100) == ORACLE["digits_pixels__knn_k3"]
    assert pedrank.knn(X, y, k=40, block_size=100) == reference.knn(X, y, k=40)
    assert max(s[0] for s in shapes) == 100 and all(len(s) == 2 for s in shapes)


# --- C = 2 and C = 400 ------------------------------------------------------------------------------------------

def many_classes(n_classes, per_class, n_features=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    rng.shuffle(y)
    X = rng.standard_normal((y.size, n_features)) + 0.5 * rng.standard_normal((n_classes, n_features))[y]
    return X, y


CLASS_SCORES = [("etran", {}), ("ncti", {}), ("pactran", {"max_iter": 10}),
                ("pactran", {"prior": "dirichlet", "probabilities": True}),
                ("pactran", {"prior": "gamma", "probabilities": True}), ("knn", {}), ("knn", {"k": 1})]


@pytest.mark.parametrize("metric,options", CLASS_SCORES)
@pytest.mark.parametrize("n_classes,per_class", [(2, 30), (400, 3)])
def test_two_and_four_hundred_classes(metric, options, n_classes, per_class):
    X, y = many_classes(n_classes, per_class)
    if options.get("probabilities"):
        X = np.exp(X) / np.exp(X).sum(axis=1, keepdims=True)
    value = pedrank.score(X, y, metric, **options)
    assert np.isfinite(value)
    close(value, reference.score(X, y, metric, **options))
    torch = pytest.importorskip("torch")
    close(pedrank.score(torch.from_numpy(X), y, metric, **options), value)
    if metric == "knn":
        assert 0.0 <= value <= 1.0
    if metric == "pactran" and options.get("probabilities"):
        assert value < 0  # minus a positive bound
    if metric == "ncti":
        seli, ncc, vc = ncti_terms(X, y)
        assert seli > 0 and ncc >= 0 and vc >= 0


def test_knn_memory_is_blocked():
    import tracemalloc

    rng = np.random.default_rng(0)
    n, block = 4_000, 256
    X, y = rng.standard_normal((n, 8)), rng.integers(0, 10, n)
    tracemalloc.start()
    try:
        value = pedrank.knn(X, y, block_size=block)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value == pedrank.knn(X, y)  # the default block (1,024 rows) finds the same neighbours
    # one (block, N) float64 distance block, its (block, N) int64 argpartition and O(N) vectors: far below N x N
    assert peak < 4 * 8 * block * n < 8 * n * n / 3


@pytest.mark.parametrize("n_samples", [2, 50])
def test_ncti_with_one_sample_per_class_says_so(n_samples):
    # It raised a raw IndexError, then an error blaming features that "barely vary within classes".
    features = np.random.default_rng(0).normal(size=(n_samples, 8))
    with pytest.raises(pedrank.PedrankValueError, match=rf"^labels: every one of the {n_samples} classes has a single"):
        pedrank.ncti(features, np.arange(n_samples))
