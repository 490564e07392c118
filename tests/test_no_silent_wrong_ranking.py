"""No silent wrong ranking (issue 23): a dead model never ranks above an informative one, and no score or pool step
lets NaN or inf out without an error.

Dead models (constant features, identical rows, all zeros, rounding-level jitter around constants in float32 and
float64) are refused by the shared validation (:class:`pedrank.UninformativeFeaturesError`) before any score or PED
runs; under ``rank(..., errors="row")`` they become NaN rows with the reason, ranked last. Every score returns a
finite number or raises a :class:`pedrank.PedrankError`; the pool scores (NCTI, ETran) refuse a model with a
non-finite term by name, and under ``errors="row"`` scale the others without it.

The property suite at the end draws pools of an informative model, a dead one and an odd-but-informative one
(extreme scales in float32 and float64, duplicated rows or columns, a large offset) for every registered score and
form, with and without PED. Derandomized under CI like the other hypothesis tests (tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pedrank
import pedrank.reference as reference
from pedrank._engine.validation import INFORMATIVE_RANGE_ULPS, finite_score
from pedrank.scores.scoring import METRIC_NAMES, SOURCE_OUTPUT_METRICS
from pedrank.workflow.pool import pool_scores

FAST = settings(suppress_health_check=[HealthCheck.too_slow])

FEATURE_METRICS = [name for name in METRIC_NAMES if name.split(":")[0] not in SOURCE_OUTPUT_METRICS]
DEAD_MESSAGE = "carry no information"


def clustered(n_samples=120, n_features=16, n_classes=4, *, separation=2.0, seed=0, dtype=np.float64):
    """Features with a clear class signal: class centres ``separation`` apart plus unit noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    centres = rng.normal(scale=separation, size=(n_classes, n_features))
    return (centres[labels] + rng.normal(size=(n_samples, n_features))).astype(dtype), labels


def dead_models(shape, seed=0):
    """Features that cannot tell two samples apart, each the way a real pipeline makes them."""
    rng = np.random.default_rng(seed)
    n_samples, n_features = shape
    row = rng.normal(size=n_features)
    eps32, eps64 = np.finfo(np.float32).eps, np.finfo(np.float64).eps
    return {
        "constant": np.full(shape, 0.1),
        "identical-rows": np.repeat(row[None, :], n_samples, axis=0),
        "zeros": np.zeros(shape),
        "constant-float32": np.full(shape, 0.7, dtype=np.float32),
        # a frozen network whose batched GEMMs round differently per batch: a few ulps around one value
        "jitter-float32": (np.float32(0.7) * (1 + rng.integers(-2, 3, size=shape) * eps32)).astype(np.float32),
        "jitter-float64": 0.7 * (1 + rng.integers(-3, 4, size=shape) * eps64),
        "jitter-rows": row * (1 + rng.integers(-2, 3, size=shape) * eps64),
    }


def run_quietly(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # over/underflow on the way is allowed; the outcome is checked
        return call()


# ------------------------------------------------------------------------------------------------ the reports


def test_h_score_ranks_the_reported_dead_model_last():
    good, labels = clustered(60, 8, 3, seed=3)
    for metric in ("h_score", "regularized_h_score"):
        table = pedrank.rank({"dead": np.full((60, 8), 0.1), "good": good}, labels, metric=metric, errors="row")
        assert table.models == ["good", "dead"]
        assert math.isfinite(table.scores["good"]) and math.isnan(table.scores["dead"])
        assert DEAD_MESSAGE in table.errors["dead"] and "'dead'" in table.errors["dead"]
        with pytest.raises(pedrank.UninformativeFeaturesError, match=rf"model 'dead'.*{DEAD_MESSAGE}"):
            pedrank.rank({"good": good, "dead": np.full((60, 8), 0.1)}, labels, metric=metric)


@pytest.mark.parametrize("value", [0.1, 0.3, 0.7, 1.1, 2.3, 0.123])
@pytest.mark.parametrize("n_samples", [60, 127, 333])
@pytest.mark.parametrize("n_features", [8, 32])
def test_constant_features_are_refused_by_h_score_whatever_their_value(value, n_samples, n_features):
    # 52 of these 60 cases scored above 0 before: the centred rounding noise was inverted as signal.
    labels = np.arange(n_samples) % 3
    features = np.full((n_samples, n_features), value)
    for lib in (pedrank, reference):
        for score in (lib.h_score, lib.regularized_h_score):
            with pytest.raises(pedrank.UninformativeFeaturesError, match="all .* rows are identical"):
                score(features, labels)


@pytest.mark.parametrize("metric", FEATURE_METRICS)
@pytest.mark.parametrize("ped", [False, True], ids=["plain", "ped"])
def test_every_kind_of_dead_model_is_refused_and_ranked_last(metric, ped):
    good, labels = clustered(90, 12, 3, seed=1)
    pool = {name: features for name, features in dead_models(good.shape, seed=2).items()}
    pool["good"] = good  # last in the pool's order, so a tie or a NaN sorted by position would put it below
    table = run_quietly(lambda: pedrank.rank(pool, labels, metric=metric, ped=ped, errors="row"))
    assert table.models[0] == "good", table
    assert math.isfinite(table.scores["good"])
    for name in dead_models(good.shape):
        assert math.isnan(table.scores[name]), (name, table.scores[name])
        assert DEAD_MESSAGE in table.errors[name], table.errors[name]
        with pytest.raises(pedrank.UninformativeFeaturesError, match=DEAD_MESSAGE):
            run_quietly(lambda: pedrank.score(pool[name], labels, metric, ped=ped))


def test_the_dead_model_that_logme_pactran_and_ncti_put_first():
    # 120 x 16 with a clear class signal beside the same model made constant: LogME (-0.601 vs -0.618), PACTran
    # (-9.94 vs -12.7) and NCTI's pool form (1 vs 0) put the dead one first.
    good, labels = clustered(120, 16, 4, seed=0)
    dead = np.full_like(good, good[0, 0])
    for metric in ("logme", "pactran", "ncti"):
        table = pedrank.rank({"dead": dead, "good": good}, labels, metric=metric, errors="row")
        assert table.models == ["good", "dead"] and math.isnan(table.scores["dead"]), (metric, table)


def test_an_informative_column_beside_large_constant_ones_is_kept():
    # The test is per column: a bias feature of 1e6 does not make the informative columns rounding noise.
    good, labels = clustered(80, 4, 2, seed=4, dtype=np.float32)
    features = np.column_stack([np.full((80, 3), 1e6, dtype=np.float32), good * np.float32(1e-3)])
    assert pedrank.h_score(features, labels) == pytest.approx(pedrank.h_score(good, labels), rel=1e-6)
    # ... and a float32 column a few ulps wide is rounding, a column 4 x INFORMATIVE_RANGE_ULPS ulps wide is not.
    eps = np.finfo(np.float32).eps
    narrow = np.float32(1.0) + np.float32(eps) * (labels[:, None] - 0.5).astype(np.float32) * 2
    with pytest.raises(pedrank.UninformativeFeaturesError, match="rounding level"):
        pedrank.h_score(np.repeat(narrow, 2, axis=1), labels)
    wide = np.float32(1.0) + np.float32(4 * INFORMATIVE_RANGE_ULPS * eps) * (labels[:, None] - 0.5).astype(np.float32)
    assert math.isfinite(pedrank.h_score(np.repeat(wide, 2, axis=1), labels))


def test_estimators_still_transform_single_rows():
    # The informativeness test is for features to be scored; a fitted estimator applied to one row is fine.
    good, labels = clustered(60, 5, 3, seed=5)
    for estimator in (pedrank.LogME().fit(good, labels), pedrank.SFDA().fit(good, labels)):
        assert estimator.predict(good[:1]).shape == (1,)


def test_torch_features_are_checked_alike():
    torch = pytest.importorskip("torch")
    _, labels = clustered(40, 4, 2)
    with pytest.raises(pedrank.UninformativeFeaturesError, match=DEAD_MESSAGE):
        pedrank.h_score(torch.full((40, 4), 0.3, dtype=torch.float64), labels)


def test_source_model_outputs_that_never_change_are_refused_or_score_the_minimum():
    good, labels = clustered(90, 5, 3, seed=6)
    probabilities = np.exp(good) / np.exp(good).sum(axis=1, keepdims=True)
    constant = np.repeat(probabilities[:1], 90, axis=0)
    table = pedrank.rank({"dead": constant, "good": probabilities}, labels, metric="leep", errors="row")
    assert table.models == ["good", "dead"] and DEAD_MESSAGE in table.errors["dead"]
    # NCE of one source label is -H(Y), its minimum: a dead source model can tie, never lead.
    hard = good.argmax(axis=1)
    assert pedrank.nce(np.zeros(90, dtype=int), labels) <= pedrank.nce(hard, labels)


def test_etran_exact_stays_finite_where_its_posterior_underflows():
    good, labels = clustered(90, 12, 3, separation=0.5, seed=7)  # overlapping: some samples nearer another mean
    from pedrank.reference.etran import etran_terms as reference_terms
    from pedrank.scores.etran import etran_terms

    for terms in (etran_terms, reference_terms):
        energy, lda = run_quietly(lambda: terms(good * 1e8, labels, log=True))
        assert math.isfinite(energy) and math.isfinite(lda) and lda < -1e10  # E[log p(y|x)], p underflowing
    assert math.isfinite(run_quietly(lambda: pedrank.score(good * 1e8, labels, "etran:exact")))
    # Where nothing underflows, log_softmax is the log of the softmax to rounding.
    plain = pedrank.etran(good, labels, log=True)
    assert plain == pytest.approx(reference.etran(good, labels, log=True), rel=1e-10)


def test_a_pool_with_an_underflowing_model_is_not_turned_into_nan():
    good, labels = clustered(90, 12, 3, seed=8)
    other, _ = clustered(90, 12, 3, seed=9)
    pool = {"big": good * 1e8, "good": good, "other": other}
    table = run_quietly(lambda: pedrank.rank(pool, labels, metric="etran:exact"))
    assert all(math.isfinite(value) for value in table.scores.values()), table


def test_a_named_form_keeps_its_name_in_the_table_and_json():
    good, labels = clustered(60, 6, 3, seed=10)
    other, _ = clustered(60, 6, 3, seed=11)
    for metric in ("etran:exact", "logme:exact", "etran", "ncti"):
        table = pedrank.rank({"a": good, "b": other}, labels, metric=metric)
        assert table.metric == metric
        assert table.to_string().splitlines()[0].startswith(f"metric: {metric}")
        assert {row["metric"] for row in json.loads(table.to_json())} == {metric}


def test_ncti_fails_one_row_not_the_pool():
    good, labels = clustered(80, 8, 4, seed=12)
    other, _ = clustered(80, 8, 4, seed=13)
    pool = {"dead": np.full_like(good, 3.0), "good": good, "other": other}
    for metric in ("ncti", "etran"):
        table = pedrank.rank(pool, labels, metric=metric, errors="row")
        assert table.models[-1] == "dead" and DEAD_MESSAGE in table.errors["dead"]
        # the others are scaled over the pool without the failed model: as if it were not there
        alone = pedrank.rank({"good": good, "other": other}, labels, metric=metric)
        assert {m: table.scores[m] for m in ("good", "other")} == alone.scores
        with pytest.raises(pedrank.UninformativeFeaturesError, match=r"model 'dead'"):
            pedrank.rank(pool, labels, metric=metric)


def test_the_pool_step_refuses_a_non_finite_term_by_model():
    good, labels = clustered(40, 4, 2, seed=14)

    def terms(features, labels, *, backend):
        return (float(np.max(features)), -math.inf if features[0, 0] > 100 else 1.0)

    pool = {"good": good, "broken": good + 1000.0}
    with pytest.raises(pedrank.NonFiniteScoreError, match=r"model 'broken'.*raw terms are \[.*-inf\]"):
        pool_scores(pool, labels, metric="toy", terms=terms, weights=(1.0, 1.0))
    table = pool_scores(pool, labels, metric="toy", terms=terms, weights=(1.0, 1.0), errors="row")
    assert table.models == ["good", "broken"] and table.scores["good"] == 0.0
    assert math.isnan(table.scores["broken"]) and "raw terms" in table.errors["broken"]


def test_a_score_that_comes_out_non_finite_raises():
    @finite_score("toy")
    def toy(features, labels):
        return float(np.sum(features)) * math.inf

    with pytest.raises(pedrank.NonFiniteScoreError, match=r"toy: the score is inf on features of shape \(3, 2\)"):
        toy(np.ones((3, 2)), [0, 1, 1])


@pytest.mark.parametrize("factor", [1e-120, 1e-60, 1e60, 1e120])
def test_scale_invariant_scores_keep_their_value_at_extreme_scales(factor):
    # PARC's PCA overflowed at 1e120 (a bare ValueError from scipy) and underflowed at 1e-120 (-1.29 instead of
    # 15.7); Ledoit-Wolf's fourth moments raised OverflowError at 1e80.
    good, labels = clustered(90, 12, 3, seed=15)
    for score in (pedrank.parc, pedrank.regularized_h_score, pedrank.h_score):
        assert run_quietly(lambda: score(good * factor, labels)) == pytest.approx(score(good, labels), rel=1e-9)


# --------------------------------------------------------------------------------------- the property suite


@st.composite
def pools(draw):
    """An informative model, a dead one and an odd-but-informative one, with the target labels."""
    n_classes = draw(st.integers(2, 4))
    n_samples = n_classes * draw(st.integers(8, 20))
    n_features = draw(st.integers(2, 10))
    seed = draw(st.integers(0, 2**16))
    good, labels = clustered(n_samples, n_features, n_classes, separation=draw(st.sampled_from([1.5, 3.0, 6.0])),
                             seed=seed)
    dead = dead_models(good.shape, seed=seed)[draw(st.sampled_from(sorted(dead_models((2, 2)))))]
    odd_kind = draw(st.sampled_from(["x1e-30 float32", "x1e30 float32", "x1e-120", "x1e120", "x1e8",
                                     "offset 1e6 float32", "duplicated rows", "duplicated columns", "x1e-300"]))
    factor_text = odd_kind.split()[0][1:]
    if odd_kind.startswith("x"):
        odd = good * float(factor_text)
        odd = odd.astype(np.float32) if odd_kind.endswith("float32") else odd
    elif odd_kind.startswith("offset"):
        odd = (good + 1e6).astype(np.float32)
    elif odd_kind == "duplicated rows":
        odd = good[np.arange(n_samples) // 2 * 2]  # every other sample repeated: same classes, half the rows
    else:
        odd = np.column_stack([good, good])
    return {"dead": dead, "odd": odd, "good": good}, labels, odd_kind


@pytest.mark.parametrize("metric", FEATURE_METRICS)
@FAST
@given(drawn=pools(), ped=st.booleans())
def test_property_dead_never_above_informative_and_nothing_non_finite_escapes(metric, drawn, ped):
    pool, labels, odd_kind = drawn
    table = run_quietly(lambda: pedrank.rank(pool, labels, metric=metric, ped=ped, errors="row"))
    scores, errors = table.scores, table.errors
    for name, value in scores.items():
        # a value is finite, or the model is a NaN row that says why; never inf, never a silent NaN
        assert math.isfinite(value) or (math.isnan(value) and errors.get(name)), (name, value, odd_kind)
    assert math.isfinite(scores["good"]), (errors, odd_kind)
    assert math.isnan(scores["dead"]) and DEAD_MESSAGE in errors["dead"]
    assert table.models.index("dead") > table.models.index("good")


@pytest.mark.parametrize("metric", sorted(SOURCE_OUTPUT_METRICS))
@FAST
@given(seed=st.integers(0, 2**16), n_classes=st.integers(2, 4), per_class=st.integers(8, 20))
def test_property_source_output_scores(metric, seed, n_classes, per_class):
    good, labels = clustered(n_classes * per_class, 6, n_classes, separation=3.0, seed=seed)
    logits = good - good.max(axis=1, keepdims=True)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if metric == "nce":
        informative, dead = probabilities.argmax(axis=1), np.zeros(labels.shape[0], dtype=int)
    else:
        informative, dead = probabilities, np.repeat(probabilities[:1], labels.shape[0], axis=0)
    table = pedrank.rank({"dead": dead, "good": informative}, labels, metric=metric, errors="row")
    assert all(math.isfinite(v) or table.errors.get(m) for m, v in table.scores.items())
    # NCE's dead source model scores -H(Y), its minimum: it may tie with an uninformative model, never lead one
    assert table.scores["good"] >= table.scores["dead"] if metric == "nce" else table.models == ["good", "dead"]


def test_a_dead_model_with_a_few_exceptional_rows_is_refused():
    # One or two inputs that broke a constant output: before, TransRate (4.42 vs 2.62), PACTran and GBC's exact
    # form ranked such a model above an informative one.
    good, labels = clustered(120, 16, 4, seed=20)
    rng = np.random.default_rng(21)
    for exceptions in (1, 2, 5):  # 115 of 120 identical: above the 95 % share
        features = np.full((120, 16), 0.1)
        features[:exceptions] += rng.normal(size=(exceptions, 16))
        for metric in ("transrate", "pactran", "gbc:exact", "sfda"):
            table = pedrank.rank({"broken": features, "good": good}, labels, metric=metric, errors="row")
            assert table.models == ["good", "broken"], (exceptions, metric, table)
            assert "one identical row" in table.errors["broken"]
    # a perfect class embedding (one row per class, each a quarter of the rows) is information, not a dead model
    embedding = np.repeat(rng.normal(size=(4, 16)), 30, axis=0)
    assert math.isfinite(pedrank.h_score(embedding, np.repeat(np.arange(4), 30)))


def test_relative_jitter_below_1e10_is_rounding_in_any_dtype():
    _, labels = clustered(120, 16, 4, seed=22)
    rng = np.random.default_rng(23)
    with pytest.raises(pedrank.UninformativeFeaturesError, match="rounding level"):
        pedrank.pactran(1.0 + rng.normal(size=(120, 16)) * 1e-13, labels)  # scored above informative ones before
    assert math.isfinite(pedrank.pactran(1.0 + rng.normal(size=(120, 16)) * 1e-8, labels))


@pytest.mark.parametrize("metric", ["ncti", "etran", "etran:exact"])
def test_pool_scores_run_on_an_executor_and_give_the_serial_table(metric):
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    good, labels = clustered(80, 8, 4, seed=30)
    other, _ = clustered(80, 8, 4, separation=1.0, seed=31)
    pool = {"dead": np.full_like(good, 2.0), "good": good, "other": other}
    serial = pedrank.rank(pool, labels, metric=metric, errors="row")
    for make in (lambda: ThreadPoolExecutor(2), lambda: ProcessPoolExecutor(2)):
        with make() as executor:
            table = pedrank.rank(pool, labels, metric=metric, errors="row", executor=executor)
        assert table.models == serial.models and table.metric == metric
        assert [r.score for r in table if r.error is None] == [r.score for r in serial if r.error is None]
        assert table.errors == serial.errors
        with make() as executor, pytest.raises(pedrank.UninformativeFeaturesError, match="model 'dead'"):
            pedrank.rank(pool, labels, metric=metric, executor=executor)
