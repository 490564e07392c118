"""pedrank.demo: a real model-selection problem on scikit-learn's digits (a reduced pool keeps it fast)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from scipy import stats

import pedrank
from pedrank.frontends.demo import MODELS, digits_model_pool, probe_accuracy, run_demo

FEW = ["pixels", "pca-4", "downsample-4x4", "ink-profiles"]


def test_extractors_give_different_features_of_the_same_images():
    train, y_train, test, y_test = digits_model_pool(models=FEW)
    assert list(train) == FEW
    assert len(y_train) + len(y_test) == 1797
    assert np.bincount(y_train).min() >= 85  # stratified halves
    assert {name: x.shape[1] for name, x in train.items()} == {"pixels": 64, "pca-4": 4, "downsample-4x4": 16,
                                                               "ink-profiles": 16}
    assert all(test[name].shape[0] == len(y_test) for name in FEW)


def test_the_probe_ground_truth_separates_strong_from_weak_features():
    train, y_train, test, y_test = digits_model_pool(models=["pixels", "pca-4"])
    strong = probe_accuracy(train["pixels"], y_train, test["pixels"], y_test)
    weak = probe_accuracy(train["pca-4"], y_train, test["pca-4"], y_test)
    assert 90 < strong <= 100 and 50 < weak < strong
    shuffled = np.random.default_rng(0).permutation(y_train)
    assert probe_accuracy(train["pixels"], shuffled, test["pixels"], y_test) < 30  # labels matter


def test_run_demo_reports_rankings_and_taus_consistent_with_the_api(tmp_path):
    out = io.StringIO()
    result = run_demo(tmp_path / "plots", metric="sfda", metrics=("sfda",), models=FEW, out=out)
    text = out.getvalue()
    train, y_train, _, _ = digits_model_pool(models=FEW)
    for with_ped in (False, True):
        table = result.tables[("sfda", with_ped)]
        scores = {name: pedrank.score(x, y_train, "sfda", ped=with_ped) for name, x in train.items()}
        assert table.models == sorted(scores, key=lambda m: -scores[m])
        expected = stats.weightedtau([scores[m] for m in FEW], [result.accuracies[m] for m in FEW])[0]
        assert result.weighted_tau[("sfda", with_ped)] == pytest.approx(expected)
        assert f"{expected:.3f}" in text
    assert all(model in text for model in FEW)
    assert len(result.plots) == 3
    for path in result.plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_full_pool_names_are_unique_and_unknown_ones_refused():
    assert len(set(MODELS)) == len(MODELS) >= 10
    with pytest.raises(ValueError, match="models"):
        digits_model_pool(models=["pixels", "resnet"])
