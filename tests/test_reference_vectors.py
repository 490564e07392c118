"""pedrank.reference reproduces the authors' own outputs (tests/data/authors_ped_metrics.npz)."""

import numpy as np
import pytest

import pedrank.reference as reference
from conftest import AUTHORS_LOGME_REGRESSION_RTOL, AUTHORS_RTOL, CASES

# conftest's tolerances for the authors' numbers; the regression exception is explained there.
RTOL = AUTHORS_RTOL
REGRESSION_RTOL = AUTHORS_LOGME_REGRESSION_RTOL


@pytest.mark.parametrize("case", CASES)
def test_logme_classification(vectors, case):
    got = reference.logme(vectors[f"s{case}_X"], vectors[f"s{case}_y"])
    assert got == pytest.approx(float(vectors[f"s{case}_logme"]), rel=RTOL)


@pytest.mark.parametrize("case", CASES)
def test_logme_regression(vectors, case):
    got = reference.logme(vectors[f"s{case}_X"], vectors[f"s{case}_Yreg"], regression=True)
    assert got == pytest.approx(float(vectors[f"s{case}_logme_regression"]), rel=REGRESSION_RTOL)


@pytest.mark.parametrize("case", CASES)
def test_sfda(vectors, case):
    got = reference.sfda(vectors[f"s{case}_X"], vectors[f"s{case}_y"])
    assert got == pytest.approx(float(vectors[f"s{case}_sfda"]), rel=RTOL)


@pytest.mark.parametrize("case", CASES)
def test_ped_one_step(vectors, case):
    result = reference.ped(
        vectors[f"s{case}_X"], vectors[f"s{case}_y"], reference=vectors[f"s{case}_ref"], max_steps=1
    )
    expected_movement = float(vectors[f"s{case}_ped_step_movement"])
    if expected_movement == 0:
        assert result.steps == 0
        np.testing.assert_array_equal(result.features, vectors[f"s{case}_X"])
    else:
        assert result.movements[0] == pytest.approx(expected_movement, rel=RTOL)
        np.testing.assert_allclose(result.features, vectors[f"s{case}_ped_step_X"], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("radius", [0.3, 0.6])
@pytest.mark.parametrize("metric", ["sfda", "logme"])
def test_ped_loop_then_score(vectors, case, radius, metric):
    got = reference.score(
        vectors[f"s{case}_X"],
        vectors[f"s{case}_y"],
        metric,
        ped={"reference": vectors[f"s{case}_ref"], "radius": radius},
    )
    assert got == pytest.approx(float(vectors[f"s{case}_ped_{metric}_r{radius}"]), rel=RTOL)
