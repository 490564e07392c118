"""pedrank.rank: a pool of models scored on the same target data and sorted best first."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

import pedrank
from pedrank.workflow.entry import RankRecord
from pedrank.workflow.rank import RankTable, rank


def _pool(n_models=4, n_samples=90, n_features=6, n_classes=3, seed=0):
    """Models whose class separation differs, sharing one set of labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    pool = {}
    for index in range(n_models):
        centres = rng.normal(scale=0.5 + index, size=(n_classes, n_features))
        pool[f"model-{index}"] = centres[labels] + rng.normal(size=(n_samples, n_features))
    return pool, labels


@pytest.mark.parametrize("metric", ["sfda", "logme", "gbc"])
def test_rank_orders_by_the_score_of_each_model(metric):
    pool, labels = _pool()
    table = rank(pool, labels, metric=metric)
    expected = {name: pedrank.score(x, labels, metric) for name, x in pool.items()}
    assert sorted(table.models) == sorted(pool)
    assert table.models == sorted(expected, key=lambda name: -expected[name])
    for record in table:
        assert record.score == pytest.approx(expected[record.model], rel=1e-12)
        assert record.seconds >= 0
        assert record.ped_steps is None
    assert table.metric == metric and table.ped is False


def test_rank_with_ped_scores_the_moved_features_and_reports_steps():
    pool, labels = _pool()
    table = rank(pool, labels, metric="sfda", ped={"radius": 0.3, "elastic": 2.0})
    for record in table:
        moved = pedrank.ped(pool[record.model], labels, radius=0.3, elastic=2.0)
        assert record.ped_steps == moved.steps
        assert record.score == pytest.approx(pedrank.score(moved.features, labels, "sfda"), rel=1e-12)
    assert table.ped is True


def test_rank_ped_true_equals_score_with_ped():
    pool, labels = _pool(n_models=2)
    table = rank(pool, labels, metric="logme", ped=True)
    for record in table:
        assert record.score == pytest.approx(pedrank.score(pool[record.model], labels, "logme", ped=True), rel=1e-12)


def test_references_override_the_target_statistics():
    pool, labels = _pool(n_models=2)
    reference = (np.zeros(6), np.full(6, 10.0))  # a wide reference shrinks every cluster: PED moves less
    table = rank(pool, labels, metric="sfda", ped=True, references={"model-0": reference})
    record = {r.model: r for r in table}["model-0"]
    expected = pedrank.ped(pool["model-0"], labels, reference=reference)
    assert record.ped_steps == expected.steps
    assert record.score == pytest.approx(pedrank.score(expected.features, labels, "sfda"), rel=1e-12)
    plain = pedrank.ped(pool["model-0"], labels)
    assert expected.movements[0] < plain.movements[0]  # the reference really was used


def test_pool_entries_may_be_pairs_dicts_and_files(tmp_path):
    pool, labels = _pool(n_models=3)
    np.savez(tmp_path / "c.npz", features=pool["model-2"], labels=labels)
    mixed = {
        "a": (pool["model-0"], labels),
        "b": {"features": pool["model-1"], "labels": labels},
        "c": tmp_path / "c.npz",
    }
    table = rank(mixed)  # no metric: the recommended one, in rank as in score
    assert table.metric == pedrank.RECOMMENDED.metric
    by_model = {r.model: r.score for r in table}
    assert by_model["a"] == pytest.approx(pedrank.score(pool["model-0"], labels), rel=1e-12)
    assert by_model["b"] == pytest.approx(pedrank.score(pool["model-1"], labels), rel=1e-12)
    assert by_model["c"] == pytest.approx(pedrank.score(pool["model-2"], labels), rel=1e-12)


def test_rank_leaves_the_callers_arrays_alone():
    pool, labels = _pool(n_models=2)
    copies = {name: x.copy() for name, x in pool.items()}
    labels_copy = labels.copy()
    rank(pool, labels, ped=True)
    for name in pool:
        np.testing.assert_array_equal(pool[name], copies[name])
    np.testing.assert_array_equal(labels, labels_copy)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p, y: rank({}, y), "empty"),
        (lambda p, y: rank(p), "no labels"),
        (lambda p, y: rank(p, y, metric="nope"), "nope"),
        (lambda p, y: rank(p, y, ped={"radios": 1}), "radios"),
        (lambda p, y: rank(list(p.values()), y), "mapping"),
        (lambda p, y: rank({"bad": p["model-0"][:5]}, y), "bad"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_the_problem(call, message):
    pool, labels = _pool(n_models=2)
    with pytest.raises(ValueError, match=message):
        call(pool, labels)


def test_a_bad_file_in_the_pool_names_the_model_and_the_file(tmp_path):
    path = tmp_path / "broken.npz"
    np.savez(path, feats=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="model 'broken'.*'features'") as info:
        rank({"broken": path})
    assert "broken" in str(info.value) and str(path) in str(info.value) and "'features'" in str(info.value)


def test_ties_keep_the_pool_order_and_nan_goes_last():
    table_records = [RankRecord("x", 1.0, 0.0), RankRecord("y", math.nan, 0.0), RankRecord("z", 2.0, 0.0)]
    # RankTable keeps the order it is given; rank() sorts. Identical features must keep insertion order.
    pool, labels = _pool(n_models=1)
    same = {"first": pool["model-0"], "second": pool["model-0"].copy(), "third": pool["model-0"].copy()}
    assert rank(same, labels).models == ["first", "second", "third"]
    assert RankTable(table_records).models == ["x", "y", "z"]


def test_exports_round_trip_and_keep_the_order(tmp_path):
    pool, labels = _pool()
    table = rank(pool, labels, metric="gbc", ped=True, dataset="toy")
    records = json.loads(table.to_json(tmp_path / "out.json"))
    assert json.loads((tmp_path / "out.json").read_text()) == records
    assert [r["model"] for r in records] == table.models
    assert [r["rank"] for r in records] == list(range(1, len(pool) + 1))
    assert all(r["metric"] == "gbc+ped" and r["dataset"] == "toy" for r in records)
    assert [r["score"] for r in records] == [r.score for r in table]
    assert [r["ped_steps"] for r in records] == [r.ped_steps for r in table]

    rows = list(csv.DictReader(io.StringIO(table.to_csv(tmp_path / "out.csv"))))
    assert [row["model"] for row in rows] == table.models
    assert [float(row["score"]) for row in rows] == pytest.approx([r.score for r in table], rel=1e-15)
    assert (tmp_path / "out.csv").read_text() == table.to_csv()


def test_the_text_table_lists_every_model_in_rank_order():
    pool, labels = _pool()
    table = rank(pool, labels)
    lines = str(table).splitlines()
    header = lines.index(next(line for line in lines if line.split()[:2] == ["rank", "model"]))
    body = [line.split() for line in lines[header + 1:]]
    assert [cells[1] for cells in body] == table.models
    assert [int(cells[0]) for cells in body] == list(range(1, len(pool) + 1))
    assert [float(cells[2]) for cells in body] == pytest.approx([r.score for r in table], abs=1e-6)


def test_models_with_the_same_score_are_said_to_be_tied_not_ranked():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    features = rng.normal(size=(90, 5)) + labels[:, None]
    table = pedrank.rank({"a": features, "copy": features.copy(), "half": features * 0.5,
                          "other": rng.normal(size=(90, 5))}, labels, metric="logme")
    assert table.ties == [["a", "copy"]]  # LogME moves with the scale (N > D): "half" is not tied
    text = str(table)
    assert ("tied: 'a' and 'copy' have the same score" in text
            and "the same features under two names?" in text)
    untied = pedrank.rank({"a": features, "other": rng.normal(size=(90, 5))}, labels, metric="logme")
    assert untied.ties == [] and "tied:" not in str(untied)
    # the same score from features of another scale (pactran:unit divides by it; halving is exact): tied, but no
    # hint at a copy
    scaled = pedrank.rank({"a": features, "half": features * 0.5}, labels, metric="pactran:unit")
    assert scaled.ties == [["a", "half"]] and "two names" not in str(scaled)
