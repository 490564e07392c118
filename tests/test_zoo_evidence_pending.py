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
