"""PARC's blocked Spearman (issue 26): the same values as the previous dense form (m x m matrices and scipy's
rankdata, kept as ``pedrank.scores.parc._spearman_dense``) and as the reference, on random and adversarial inputs."""

import importlib

import numpy as np
import pytest
from scipy.stats import rankdata

from pedrank.reference.parc import parc as reference_parc

parc_module = importlib.import_module("pedrank.scores.parc")
parc = parc_module.parc
RTOL = 1e-8


def both_forms(features, labels, exact, monkeypatch=None):
    standardised, encoded, kernels = parc_module.parc_inputs(
        features, labels, n_components=32, max_samples=15000, random_state=0, exact=exact)
    blocked = parc_module._parc_spearman(standardised, encoded, exact)
    dense = parc_module._spearman_dense(standardised.copy(), encoded, exact, kernels)
    return blocked, dense


def cases():
    rng = np.random.default_rng(26)
    labels = np.arange(300) % 7
    yield "random", rng.normal(size=(300, 20)), labels
    yield "two classes", rng.normal(size=(201, 9)) + (np.arange(201) % 2)[:, None], np.arange(201) % 2
    yield "tiny", rng.normal(size=(5, 3)), np.array([0, 1, 0, 1, 1])
    grid = rng.integers(0, 3, size=(250, 4)).astype(float)  # integer grid: many tied correlations
    yield "integer grid", grid, rng.integers(0, 5, 250)
    base = rng.normal(size=(60, 8))
    yield "duplicated rows", np.repeat(base, 4, axis=0), np.repeat(np.arange(60) % 3, 4)
    constant = rng.normal(size=(150, 6))
    constant[::5] = 1.0  # constant samples: correlation 0 (dissimilarity exactly 1) with every other
    yield "constant rows", constant, np.arange(150) % 4
    yield "many classes", rng.normal(size=(400, 40)), rng.integers(0, 120, 400)
    rank_deficient = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 50))
    yield "rank deficient", rank_deficient, np.arange(200) % 5


CASES = list(cases())
#: Inputs whose sample correlations hold exact ties in exact arithmetic (integer grids, duplicated or identical
#: samples). Every implementation breaks those ties by its own rounding: the reference's np.corrcoef, the previous
#: dense form's compiled covariance and the blocked product each round the tied correlations apart at different
#: pairs (which pairs depends on how each matrix product is tiled), and the rank correlations then differ by up to
#: 3.3e-3 relative between any two of the three (measured on these cases, NumPy 2.4 / OpenBLAS 0.3.31).
TIED = {"integer grid", "duplicated rows", "constant rows"}
TIED_RTOL = 1e-2


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name, features, labels", CASES, ids=[case[0] for case in CASES])
def test_blocked_equals_the_dense_form_and_the_reference(name, features, labels, exact):
    blocked, dense = both_forms(features, labels, exact)
    expected = reference_parc(features, labels, exact=exact)
    rtol = TIED_RTOL if name in TIED else RTOL
    np.testing.assert_allclose(blocked, dense, rtol=rtol, atol=1e-15)
    np.testing.assert_allclose(parc(features, labels, exact=exact), expected, rtol=rtol, atol=1e-13)
    if name in TIED:  # the previous form was no closer to the reference than the tolerance says
        assert abs(100 * dense / expected - 1) > 1e-7


@pytest.mark.parametrize("exact", [False, True])
def test_many_row_blocks_and_chunks(monkeypatch, exact):
    """Blocks of 8 rows and tie chunks of 7 values: the same value as one block."""
    features, labels = CASES[0][1], CASES[0][2]
    whole, dense = both_forms(features, labels, exact)
    monkeypatch.setattr(parc_module, "_BLOCK_ENTRIES", 1)
    monkeypatch.setattr(parc_module, "_CHUNK", 7)
    blocked, _ = both_forms(features, labels, exact)
    np.testing.assert_allclose(blocked, whole, rtol=1e-13)
    np.testing.assert_allclose(blocked, dense, rtol=RTOL)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 22])
def test_tie_term_is_exact(monkeypatch, chunk):
    monkeypatch.setattr(parc_module, "_CHUNK", chunk)
    rng = np.random.default_rng(1)
    for values in (np.sort(rng.integers(0, 6, 40).astype(float)), np.arange(10.0), np.ones(9),
                   np.array([0.0, 0.0, 1.0, 1.0, 1.0, 2.0])):
        _, counts = np.unique(values, return_counts=True)
        assert parc_module._tie_term(values) == int(sum(int(t) ** 3 - int(t) for t in counts))


def test_grouped_spearman_is_scipys_on_ties_both_sides():
    rng = np.random.default_rng(2)
    values = rng.integers(0, 9, 500).astype(float)
    label = rng.integers(0, 3, 500)
    label[:3] = [0, 1, 2]
    counts = np.bincount(label)
    stash = {g: values[label == g] for g in (0, 2)}
    rho = parc_module._spearman_grouped(values.copy(), stash, counts, parc_module._twice_ranks(counts), 1)
    expected = np.corrcoef(rankdata(values), rankdata(label))[0, 1]
    np.testing.assert_allclose(rho, expected, rtol=1e-13)


def test_equal_dissimilarities_still_raise():
    with pytest.raises(ValueError, match="equally dissimilar"):
        parc_module._spearman_grouped(np.ones(6), {0: np.ones(2)}, np.array([2, 4]), [3, 10], 1)
