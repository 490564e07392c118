"""The public calls a user makes, against the PED authors' own outputs, on both vector files.

``tests/data/authors_ped_metrics.npz``: random full-rank cases (PED rescaled by reference features).
``tests/data/authors_rank_deficient.npz``: digits pixels (rank 61 of 64) and ReLU features with dead units
(rank 176 of 256), each at two feature scales, and an N < D case; PED rescaled by the target features
themselves (``reference=X``), see tests/data/README.md.

Every implementation a user can reach (the compiled core through ``pedrank``, the torch backend through
tensors, ``pedrank.reference``) must give the authors' numbers to 1e-8 relative: that is what "drop-in"
means. The features of the rank-deficient file are float32, as real features are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pedrank
from conftest import AUTHORS_RTOL  # the one tolerance for the authors' numbers, stated in conftest
from pedrank import reference

DATA = Path(__file__).resolve().parent / "data"
RANK_DEFICIENT = ["digits_pixels", "digits_pixels_x16", "relu_dead", "relu_dead_x100", "relu_wide"]


def _torch_or_skip():
    return pytest.importorskip("torch", reason="the torch backend needs torch (pedrank[torch])")


@pytest.fixture(scope="module")
def rank_deficient():
    with np.load(DATA / "authors_rank_deficient.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def full_rank():
    with np.load(DATA / "authors_ped_metrics.npz") as data:
        return {key: data[key] for key in data.files}


def _score(implementation, features, labels, metric, **options):
    if implementation == "core":
        return pedrank.score(features, labels, metric, **options)
    if implementation == "reference":
        return reference.score(features, labels, metric, **options)
    torch = _torch_or_skip()
    ped = options.get("ped")
    if isinstance(ped, dict) and isinstance(ped.get("reference"), np.ndarray):
        options = {**options, "ped": {**ped, "reference": torch.as_tensor(ped["reference"])}}
    return pedrank.score(torch.as_tensor(features), labels, metric, **options)


IMPLEMENTATIONS = ["core", "torch", "reference"]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("metric", ["logme", "sfda"])
@pytest.mark.parametrize("case", RANK_DEFICIENT)
def test_rank_deficient_scores(rank_deficient, case, metric, implementation):
    features, labels = rank_deficient[f"{case}__X"], rank_deficient[f"{case}__y"]
    got = _score(implementation, features, labels, metric)
    assert got == pytest.approx(float(rank_deficient[f"{case}__{metric}"]), rel=AUTHORS_RTOL)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("metric", ["logme", "sfda"])
@pytest.mark.parametrize("case", RANK_DEFICIENT)
def test_rank_deficient_scores_after_ped(rank_deficient, case, metric, implementation):
    features, labels = rank_deficient[f"{case}__X"], rank_deficient[f"{case}__y"]
    got = _score(implementation, features, labels, metric, ped={"reference": features})
    assert got == pytest.approx(float(rank_deficient[f"{case}__ped_{metric}"]), rel=AUTHORS_RTOL)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("metric", ["logme", "sfda"])
@pytest.mark.parametrize("case", range(1, 9))
def test_full_rank_scores(full_rank, case, metric, implementation):
    features, labels = full_rank[f"s{case}_X"], full_rank[f"s{case}_y"]
    got = _score(implementation, features, labels, metric)
    assert got == pytest.approx(float(full_rank[f"s{case}_{metric}"]), rel=AUTHORS_RTOL)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("radius", [0.3, 0.6])
@pytest.mark.parametrize("metric", ["logme", "sfda"])
@pytest.mark.parametrize("case", range(1, 9))
def test_full_rank_scores_after_ped(full_rank, case, metric, radius, implementation):
    features, labels = full_rank[f"s{case}_X"], full_rank[f"s{case}_y"]
    ped = {"reference": full_rank[f"s{case}_ref"], "radius": radius}
    got = _score(implementation, features, labels, metric, ped=ped)
    assert got == pytest.approx(float(full_rank[f"s{case}_ped_{metric}_r{radius}"]), rel=AUTHORS_RTOL)


@pytest.mark.parametrize("case", ["digits_pixels", "relu_dead"])
def test_logme_default_does_not_move_with_the_feature_scale_beyond_the_authors(rank_deficient, case):
    """The authors' N > D number is the rank-consistent evidence: pedrank's default follows it at both scales
    (it used to add (D - rank)/(2N) log(alpha), which moves with a rescaling of the features)."""
    scaled = {"digits_pixels": "digits_pixels_x16", "relu_dead": "relu_dead_x100"}[case]
    for name in (case, scaled):
        features, labels = rank_deficient[f"{name}__X"], rank_deficient[f"{name}__y"]
        default = pedrank.logme(features, labels)
        assert default == pytest.approx(pedrank.logme(features, labels, exact_dimension=True), rel=1e-12)
        assert default == pytest.approx(float(rank_deficient[f"{name}__logme"]), rel=AUTHORS_RTOL)


def test_logme_keeps_the_authors_dimension_quirk_when_n_is_at_most_d(rank_deficient):
    """N <= D (thin SVD, N components): the authors' D/2 log(alpha) is a real quirk; the default keeps it and
    exact_dimension=True removes exactly (D - N)/(2N) log(alpha) per target."""
    features, labels = rank_deficient["relu_wide__X"], rank_deficient["relu_wide__y"]
    model = pedrank.LogME().fit(features, labels)
    exact = pedrank.LogME(exact_dimension=True).fit(features, labels)
    n_samples, n_features = features.shape
    np.testing.assert_allclose(exact.alphas_, model.alphas_, rtol=1e-12)
    np.testing.assert_allclose(
        model.evidence_ - exact.evidence_, (n_features - n_samples) / (2 * n_samples) * np.log(model.alphas_),
        rtol=1e-9,
    )
    assert model.score_ == pytest.approx(float(rank_deficient["relu_wide__logme"]), rel=AUTHORS_RTOL)
