"""evidence.py's ``score --pending DATASET``: a fine-tuned dataset whose fine-tuning is under way is scored with
every candidate model before its truth exists (the scores do not depend on it), and only when asked."""

from __future__ import annotations

import json

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


def test_the_report_reads_the_sets_from_the_units_and_the_stored_probes_without_features(monkeypatch, tmp_path):
    """``report`` reruns from the committed units and probes.json: no feature is loaded, no zoo network either."""
    (evidence,) = zoo_modules_or_skip("evidence")
    units = [
        {"set": "finetuned", "dataset": "digits", "budget": "full", "resample": None, "n_rows": 1257,
         "scores": {"a": {}, "b": {}}, "refused": {"c": "dead"}},
        {"set": "finetuned", "dataset": "digits", "budget": "full", "resample": 0, "n_rows": 1006,
         "scores": {"a": {}}, "refused": {}},
        {"set": "finetuned", "dataset": "digits", "budget": "small", "resample": None, "n_rows": 200,
         "scores": {"a": {}, "b": {}, "d": {}}, "refused": {}},
        {"set": "probe", "dataset": "lfw", "budget": "full", "resample": None, "n_rows": 140,
         "scores": {"a": {}}},
    ]
    sets = evidence.judged_sets(units)
    assert sets == {"finetuned": {"digits": {"models": ["a", "b", "c"], "train_rows": 1257}},
                    "probe": {"lfw": {"models": ["a"], "train_rows": 140}}}

    monkeypatch.setattr(evidence, "CACHE", tmp_path)
    monkeypatch.setattr(evidence, "finetuned_runs", lambda: {})
    stored = {"finetuned/digits/a": 0.9, "finetuned/digits/b": 0.8, "finetuned/digits/c": 0.1, "probe/lfw/a": 0.7}
    (tmp_path / "probes.json").write_text(json.dumps(stored))

    def no_features(names, pending=()):
        raise AssertionError(f"features loaded for {names}")

    monkeypatch.setattr(evidence, "feature_sets", no_features)
    _, probes = evidence.truths(sets, refresh=False)
    assert probes == {"finetuned": {"digits": {"a": 0.9, "b": 0.8, "c": 0.1}}, "probe": {"lfw": {"a": 0.7}}}


def test_a_probe_not_stored_loads_its_sets_features_once_and_is_stored(monkeypatch, tmp_path):
    """Only a probe missing from probes.json loads features: its set's, once; the probe is then stored."""
    evidence, _ = zoo_modules_or_skip("evidence", "run_zoo")  # run_zoo computes the probe
    units = [{"set": "probe", "dataset": "lfw", "budget": "full", "resample": None, "n_rows": 140,
              "scores": {"a": {}}}]
    monkeypatch.setattr(evidence, "CACHE", tmp_path)
    monkeypatch.setattr(evidence, "finetuned_runs", lambda: {})
    stored = {"finetuned/digits/a": 0.9}
    (tmp_path / "probes.json").write_text(json.dumps(stored))
    labels = np.repeat(np.arange(2), 20)
    features = np.random.default_rng(0).normal(size=(40, 3)) + labels[:, None]
    loads = []

    def probe_features(names, pending=()):
        loads.append(list(names))
        return {"probe": {"lfw": {"models": ["a"], "features": {"a": (features, labels)},
                                  "train": np.arange(0, 40, 2), "test": np.arange(1, 40, 2)}}}

    monkeypatch.setattr(evidence, "feature_sets", probe_features)
    _, probes = evidence.truths(evidence.judged_sets(units), refresh=False)
    assert loads == [["probe"]]
    assert 0.5 < probes["probe"]["lfw"]["a"] <= 1.0
    assert "probe/lfw/a" in json.loads((tmp_path / "probes.json").read_text())


def test_the_held_out_targets_are_judged_alone_once_they_have_a_truth(monkeypatch, tmp_path):
    evidence, campaign = zoo_modules_or_skip("evidence", "campaign")
    monkeypatch.setattr(evidence, "CACHE", tmp_path)
    target = campaign.HELDOUT_TARGETS[0]
    # before the truth: the predictions, read from the measured unit
    (tmp_path / f"campaign__{target}__full__measured.json").write_text(json.dumps(
        {"scores": {"m1": {"pactran:unit": 1.0, "logme": 3.0}, "m2": {"pactran:unit": 2.0, "logme": 1.0},
                    "m3": {"pactran:unit": 3.0, "logme": 2.0}}}))
    text = evidence.heldout_section(50, table=[])
    assert "No fine-tuned truth yet" in text
    assert f"- {target}, pactran:unit: m3, m2, m1 ... (3 models)" in text
    assert f"- {target}, logme: m1, m3, m2 ... (3 models)" in text
    # with a truth: pactran:unit ranks the 12 models as their accuracy does, LogME in reverse
    rng = np.random.default_rng(0)
    table = []
    for target in campaign.HELDOUT_TARGETS[:2]:
        for m in range(12):
            for seed in range(3):
                table.append({"truth": "campaign", "dataset": target, "resample": "measured", "model": f"m{m}",
                              "variant": "accuracy", "score": m + rng.normal(0, 0.1), "seed": str(seed)})
            for variant, value in (("pactran:unit", m), ("logme", -m)):
                table.append({"truth": "campaign", "dataset": target, "resample": "measured", "model": f"m{m}",
                              "variant": variant, "score": float(value), "seed": ""})
    table.append({"truth": "campaign", "dataset": "mnist", "resample": "measured", "model": "m0",
                  "variant": "logme", "score": 5.0, "seed": ""})  # another target: not judged here
    text = evidence.heldout_section(50, table=table)
    assert f"Judged on 2 of {len(campaign.HELDOUT_TARGETS)}" in text
    lines = [line for line in text.splitlines() if line.startswith("| ") and "variant" not in line]
    assert lines[0].startswith("| pactran:unit | +1.000") and lines[1].startswith("| logme | -1.000")
    assert lines[1].endswith("| 0.00 | 0.50 |")  # logme never beats the default; ties itself half the time
