"""The text fine-tuning campaign (benchmarks/zoo/text_campaign.py), small and fast: no zoo is pre-trained here,
one tiny network is, twice, on a synthetic source; one fine-tuning unit runs with 12 steps per setting.

Skipped, with the reason, where torch, scikit-learn or the Debian text data (fortunes, wordnet-base) are absent.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ZOO = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"
MISSING = [name for name in ("torch", "sklearn") if importlib.util.find_spec(name) is None]
MISSING += [str(p) for p in (Path("/usr/share/games/fortunes/computers"), Path("/usr/share/wordnet/data.noun"))
            if not p.exists()]

pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"text campaign needs {MISSING}")

TINY = "bag_w16_wordnet_other_s200"


@pytest.fixture(scope="module")
def tc():
    sys.path.insert(0, str(ZOO))
    try:
        spec = importlib.util.spec_from_file_location("text_campaign_under_test", ZOO / "text_campaign.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ZOO))
    return module


def _synthetic_source():
    rng = np.random.default_rng(0)
    vocab = [[f"w{c}x{k}" for k in range(20)] for c in range(4)]
    labels = np.arange(240) % 4
    texts = [" ".join(rng.choice(vocab[c], size=6)) for c in labels]
    return texts, labels.astype(np.int64)


@pytest.fixture(scope="module")
def checkpoint(tc, tmp_path_factory):
    """TINY pre-trained twice on a synthetic source: both state dicts' SHA-256, and one checkpoint on disk."""
    import torch

    torch.set_num_threads(1)
    digests = []
    for _ in range(2):
        net, info = tc.pretrain_one(TINY, _synthetic_source())
        buffer = io.BytesIO()
        torch.save(net.state_dict(), buffer)
        digests.append(hashlib.sha256(buffer.getvalue()).hexdigest())
    root = tmp_path_factory.mktemp("text_checkpoints")
    torch.save(net.state_dict(), root / f"{TINY}.pt")
    return root, digests, info


def test_names_parse_and_cover_the_grid(tc):
    names = tc.model_names()
    assert len(names) == len(set(names)) == 48
    assert tc.parse_name(TINY) == ("bag", 16, "wordnet_other", 200)
    assert {tc.parse_name(n)[2] for n in names} == set(tc.SOURCES)
    assert tc.SEEDS == (0, 1, 2)
    assert len(tc.TARGETS) >= 4


def test_encode_is_a_fixed_hash_with_padding(tc):
    ids = tc.encode(["Hello, world! hello", ""], max_tokens=5)
    assert ids.dtype == np.float32 and ids.shape == (2, 5)
    assert ids[0, 0] == ids[0, 2] != ids[0, 1]
    assert ids[0, 3:].tolist() == [0, 0] and ids[1].tolist() == [1, 0, 0, 0, 0]
    assert ids.max() < tc.BUCKETS


def test_targets_and_the_stratified_split(tc):
    for target, n, classes in (("fortunes", 1200, 10), ("wordnet_low", 240, 12), ("wordnet_nouns", 800, 8)):
        texts, labels = tc.target_data(target)
        assert len(texts) == len(labels) == n and len(np.unique(labels)) == classes
        train, test = tc.split(labels)
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == n
        share = np.bincount(labels[test]) / np.bincount(labels)
        assert np.all(np.abs(share[share > 0] - 0.3) < 0.02)
    same, _ = tc.target_data("wordnet")
    dropped, _ = tc.target_data("wordnet_dropout")
    assert all(len(d.split()) <= len(s.split()) for s, d in zip(same, dropped))
    assert sum(len(d.split()) for d in dropped) < 0.7 * sum(len(s.split()) for s in same)
    with pytest.raises(SystemExit, match="unknown target"):
        tc.target_data("fortunes_upside_down")


def test_pretraining_is_deterministic(checkpoint):
    _, digests, info = checkpoint
    assert digests[0] == digests[1]
    assert info["source_accuracy"] > 0.9  # the synthetic classes have disjoint words


def test_features_shapes_and_cache(tc, checkpoint, tmp_path, monkeypatch):
    root, _, _ = checkpoint
    monkeypatch.setattr(tc, "CHECKPOINTS", root)
    monkeypatch.setattr(tc, "FEATURES", tmp_path / "features")
    texts, labels = tc.target_data("wordnet_low")
    first = tc.features("wordnet_low", models=[TINY])
    X, y = first[TINY]
    assert X.dtype == np.float32 and X.shape == (len(texts), tc.FEATURE_DIM)
    np.testing.assert_array_equal(y, labels)
    assert len(list((tmp_path / "features").glob("*.npz"))) == 1
    again = tc.features("wordnet_low", models=[TINY])
    np.testing.assert_array_equal(again[TINY][0], X)


def test_one_unit_is_deterministic_and_reaches_the_table(tc, checkpoint, tmp_path, monkeypatch):
    root, _, _ = checkpoint
    monkeypatch.setattr(tc, "CHECKPOINTS", root)
    monkeypatch.setitem(tc.FINETUNE, "iterations", 12)
    results = []
    for run in ("a", "b"):
        monkeypatch.setattr(tc, "RUNS", tmp_path / run / "runs")
        results.append(tc.finetune_unit(TINY, "wordnet_low", 0, {}))
    assert [r["test_accuracy"] for r in results[0].runs] == [r["test_accuracy"] for r in results[1].runs]
    assert len(results[0].runs) == len(tc.FINETUNE["learning_rates"])
    monkeypatch.setattr(tc, "ACCURACIES", tmp_path / "accuracies.csv")
    chosen = tc.write_accuracies()
    assert list(chosen) == [(0, "wordnet_low", TINY)]
    with (tmp_path / "accuracies.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["target", "model", "seed", "test_accuracy", "val_accuracy", "learning_rate", "train_loss",
                       "trained"]
    assert rows[1][:3] == ["wordnet_low", TINY, "0"]


def test_trained_flags_a_loss_that_stayed_at_chance(tc):
    assert not tc.trained({"train_loss": 0.99 * math.log(10), "n_classes": 10})
    assert not tc.trained({"train_loss": None, "n_classes": 10})
    assert tc.trained({"train_loss": 0.5, "n_classes": 10})
