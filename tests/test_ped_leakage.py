"""PED with a held-out-accuracy score (k-NN, ITM) leaks labels: the combination warns, the others do not.

PED moves every row by its own class's displacement, so rows that k-NN (leave-one-out) or ITM (its held-out split)
treat as unseen carry their labels in their features. The inflation is shown on pure noise (chance accuracy
without PED, clearly above it with PED), and every path that combines PED with such a score warns.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pedrank
from pedrank.scores.registry import scores
from pedrank.workflow.tune import tune

N_CLASSES = 6


def _noise_and_informative(n=360, d=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % N_CLASSES
    noise = rng.normal(size=(n, d))
    informative = rng.normal(size=(n, d)) + 0.8 * np.eye(N_CLASSES)[labels] @ rng.normal(size=(N_CLASSES, d))
    return noise, informative, labels


def test_the_registry_marks_exactly_the_held_out_scores():
    assert sorted(name for name, entry in scores().items() if entry.held_out) == ["itm", "knn"]


def test_ped_inflates_knn_on_pure_noise():
    noise, _, labels = _noise_and_informative()
    with pytest.warns(pedrank.PedLeakageWarning, match="leak"):
        moved = pedrank.score(noise, labels, "knn", ped=True)
    plain = pedrank.score(noise, labels, "knn")
    assert plain < 1.5 / N_CLASSES  # about chance without PED
    assert moved > plain + 0.05  # the labels, not the features, raise it


@pytest.mark.parametrize("metric", ["knn", "itm"])
def test_score_and_rank_warn_for_held_out_scores_with_ped(metric):
    noise, informative, labels = _noise_and_informative(n=120, d=8)
    if metric == "itm":
        pytest.importorskip("torch")
    with pytest.warns(pedrank.PedLeakageWarning, match=f"{metric} measures accuracy on held-out rows"):
        pedrank.score(informative, labels, metric, ped=True)
    with pytest.warns(pedrank.PedLeakageWarning, match="leak"):
        pedrank.rank({"noise": noise, "informative": informative}, labels, metric=metric, ped=True, progress=False)


@pytest.mark.parametrize("metric", ["logme", "gbc", "knn"])
def test_no_warning_without_ped_or_for_in_sample_scores(metric):
    _, informative, labels = _noise_and_informative(n=120, d=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pedrank.PedLeakageWarning)
        pedrank.score(informative, labels, metric)
        if metric != "knn":
            pedrank.score(informative, labels, metric, ped=True)
            pedrank.rank({"a": informative, "b": informative[::-1].copy()}, labels[::-1].copy(), metric=metric,
                         ped=True, progress=False)


def test_tune_warns_when_it_tunes_ped_for_knn():
    noise, informative, labels = _noise_and_informative(n=120, d=8)
    pools = {"one": {"a": (noise, labels), "b": (informative, labels)},
             "two": {"a": (informative, labels), "b": (noise, labels)}}
    truth = {"one": {"a": 0.2, "b": 0.9}, "two": {"a": 0.9, "b": 0.2}}
    with pytest.warns(pedrank.PedLeakageWarning, match="knn measures accuracy"):
        tune(pools, truth, metrics=["knn"], grid=[{}], progress=False)
