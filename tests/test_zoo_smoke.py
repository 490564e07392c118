"""Smoke test of the offline model zoo (benchmarks/zoo): two tiny pre-trained Keras CNNs on 300 of
scikit-learn's digits, through the benchmark's own extraction, probe, scoring and ranking code.

Skipped, with the reason, only when the zoo's optional packages are absent (keras, h5py, torch, and the two
weight packages digitsclassifier and cifar-10-model: `bash benchmarks/zoo/setup.sh` installs them).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy import stats

from conftest import zoo_modules

OPTIONAL = ("torch", "keras", "h5py", "digitsclassifier", "cifar_10_model")
MISSING = [name for name in OPTIONAL if importlib.util.find_spec(name) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"zoo packages not installed: {MISSING} (bash benchmarks/zoo/setup.sh)"
)


@pytest.fixture(scope="module")
def zoo():
    return zoo_modules("run_zoo", "zoo_data", "zoo_models")


@pytest.fixture(scope="module")
def digits_pool(zoo):
    _, zoo_data, zoo_models = zoo
    images, labels = zoo_data.digits()
    keep = np.r_[0:300]
    images, labels = images[keep], labels[keep]
    return {
        name: (zoo_models.VISION_MODELS[name](images, labels), labels)
        for name in ("digits_cnn", "cifar10_cnn")
    }


def test_features_have_the_documented_width_and_are_deterministic(zoo, digits_pool):
    _, zoo_data, zoo_models = zoo
    assert digits_pool["digits_cnn"][0].shape == (300, 128)
    assert digits_pool["cifar10_cnn"][0].shape == (300, 512)
    for features, _ in digits_pool.values():
        assert np.isfinite(features).all()
        assert features.std(axis=0).max() > 0
    images, labels = zoo_data.digits()
    again = zoo_models.VISION_MODELS["digits_cnn"](images[:300], labels[:300])
    np.testing.assert_array_equal(again, digits_pool["digits_cnn"][0])


def test_digit_features_carry_the_digit(zoo, digits_pool):
    # A CNN trained on handwritten digits must give linearly separable digits: far above chance (0.1).
    run_zoo, _, _ = zoo
    features, labels = digits_pool["digits_cnn"]
    train, test = run_zoo.split(labels)
    assert len(test) == 90 and set(np.unique(labels[train])) == set(range(10))
    assert run_zoo.probe_accuracy(features, labels, train, test) > 0.5


def test_scores_and_ranking_metrics_on_the_pool(zoo, digits_pool):
    run_zoo, _, _ = zoo
    labels = digits_pool["digits_cnn"][1]
    train, test = run_zoo.split(labels)
    metrics = {k: v for k, v in run_zoo.metric_functions().items() if k in ("logme", "sfda", "gbc")}
    pool = {("digits", m): pair for m, pair in digits_pool.items()}
    scores = run_zoo.score_pool(pool, {"digits": train}, metrics, (False, True))
    assert len(scores) == 2 * 3 * 2
    assert all(np.isfinite(list(scores.values())))
    # PED moves the features, so it must change at least one score of each model.
    for model in digits_pool:
        assert any(scores["digits", model, k, True] != scores["digits", model, k, False] for k in metrics)

    accuracy = {("digits", m): run_zoo.probe_accuracy(*digits_pool[m], train, test) for m in digits_pool}
    table = run_zoo.evaluate_all(scores, accuracy, ["digits"], {"digits": list(digits_pool)}, metrics,
                                 (False, True))
    models = list(digits_pool)
    for (_, metric, ped), row in table.items():
        values = [scores["digits", m, metric, ped] for m in models]
        truth = [accuracy["digits", m] for m in models]
        assert row["weighted_tau"] == pytest.approx(stats.weightedtau(values, truth)[0])
        best = truth[int(np.argmax(values))] / max(truth)
        assert row["top1_relative_accuracy"] == pytest.approx(best)
