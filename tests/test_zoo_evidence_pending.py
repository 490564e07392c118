"""evidence.py's ``score --pending DATASET``: a fine-tuned dataset whose fine-tuning is under way is scored with
every candidate model before its truth exists (the scores do not depend on it), and only when asked."""

from __future__ import annotations

import numpy as np

from conftest import zoo_modules_or_skip


def test_a_pending_dataset_enters_the_finetuned_set_with_every_candidate(monkeypatch):
    evidence, run_finetune = zoo_modules_or_skip("evidence", "run_finetune")
    labels = np.repeat(np.arange(3), 10)

    monkeypatch.setattr(evidence, "finetuned_runs", lambda: {"digits": {m: {0: 0.9} for m in evidence.VISION_MODELS}})
    monkeypatch.setattr(run_finetune, "load_dataset", lambda dataset: (None, labels, np.arange(20), np.arange(20, 30)))
    monkeypatch.setattr(run_finetune, "cached_features",
                        lambda dataset, model, inputs, labels: np.random.default_rng(0).normal(size=(30, 4)))
    before = evidence.feature_sets(["finetuned"])["finetuned"]
    assert sorted(before) == ["digits"] and before["digits"]["models"] == list(evidence.VISION_MODELS)

    pending = evidence.feature_sets(["finetuned"], pending=("fonts",))["finetuned"]
    assert sorted(pending) == ["digits", "fonts"]
    assert pending["fonts"]["models"] == list(evidence.VISION_MODELS) + list(run_finetune.EXTRA_MODELS)
    assert pending["digits"]["models"] == before["digits"]["models"]  # a dataset with its truth is unchanged


def test_a_unit_that_loses_models_keeps_the_others_scores_and_redoes_only_the_pool_forms():
    (evidence,) = zoo_modules_or_skip("evidence")
    stored = {"set": "finetuned", "scores": {m: {"logme": i, "logme+PED": -i, "etran (pool)": 9.0}
                                            for i, m in enumerate("abc")},
              "seconds": {"logme": 3.0, "etran (pool)": 1.0, "PED": 2.0},
              "failures": {"c": {"logme": "refused"}, "b": {"etran (pool)": "old pool failure"}}}
    pooled = ({"a": {"etran (pool)": 1.0}, "b": {"etran (pool)": 0.0}}, {"etran (pool)": 0.5, "PED": 1.5}, {})
    restricted = evidence._without_models(stored, ["a", "b"], pooled)
    assert restricted["scores"] == {"a": {"logme": 0, "logme+PED": 0, "etran (pool)": 1.0},
                                    "b": {"logme": 1, "logme+PED": -1, "etran (pool)": 0.0}}
    assert restricted["failures"] == {}  # c's left with c; b's pool failure was over the old pool
    assert restricted["seconds"] == {"logme": 3.0, "etran (pool)": 0.5, "PED": 1.5}
    assert stored["scores"]["c"]["logme"] == 2  # the stored unit is not modified


def test_score_refuses_a_dataset_name_that_is_no_dataset_of_the_sets(monkeypatch):
    import argparse

    import pytest

    (evidence,) = zoo_modules_or_skip("evidence")
    monkeypatch.setattr(evidence, "_memoized_mixture", lambda: None)
    monkeypatch.setattr(evidence, "feature_sets", lambda names, pending=(): {"finetuned": {"digits": {}, "lfw": {}}})
    args = argparse.Namespace(sets=["finetuned"], pending=[], datasets=["fontz"], exclude=[], resamples=0,
                              campaign_resamples=0)
    with pytest.raises(SystemExit, match=r"--datasets: found \['fontz'\]; expected datasets of the sets "
                                         r"\['finetuned'\]: \['digits', 'lfw'\]"):
        evidence.run_scores(args)
