"""pedrank.rank(executor=...): one task per model, over real worker processes (a dask.distributed LocalCluster).

The pool is a folder of feature files in the authors' layout; each task reads its own file where it runs. One
cluster (2 worker processes) serves the module: its start-up is most of the ~10-20 s.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pedrank
from pedrank import PedrankValueError
from pedrank.workflow.io import FeatureFileError, FeatureSource, find_features


def _write_pool(folder, n_models=5, n=120, d=12, seed=0):
    """``{model}_toy_feature.npy`` + ``_label.npy`` per model; models separate the classes more and more."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    centers = rng.normal(size=(4, d))
    for i in range(n_models):
        features = rng.normal(size=(n, d)) + (0.2 + 0.4 * i) * centers[labels]
        np.save(folder / f"model{i}_toy_feature.npy", features.astype(np.float32))
        np.save(folder / f"model{i}_toy_label.npy", labels)
    return find_features(folder, dataset="toy")


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def _same(a, b):
    assert a.models == b.models
    assert [r.score for r in a] == [r.score for r in b]  # bit for bit: the same code on the same files
    assert [r.ped_steps for r in a] == [r.ped_steps for r in b]


@pytest.mark.parametrize("ped", [False, True])
def test_a_cluster_of_processes_gives_the_serial_ranking(tmp_path, client, ped):
    pool = _write_pool(tmp_path)
    assert all(isinstance(entry, FeatureSource) for entry in pool.values())  # paths travel, not features
    serial = pedrank.rank(pool, metric="logme", ped=ped)
    assert serial.models[0] == "model4"  # the scores differ: the order checks something
    _same(pedrank.rank(pool, metric="logme", ped=ped, executor=client.get_executor()), serial)
    _same(pedrank.rank(pool, metric="logme", ped=ped, executor=client), serial)
    by_path = {name: source.path for name, source in pool.items()}  # plain paths (their labels beside them)
    _same(pedrank.rank(by_path, metric="logme", ped=ped, executor=client.get_executor()), serial)


def test_one_bad_file_is_its_row_and_the_others_finish(tmp_path, client):
    pool = _write_pool(tmp_path)
    good = pedrank.rank(pool, metric="sfda")
    (tmp_path / "model2_toy_feature.npy").write_bytes(b"not a numpy file")
    table = pedrank.rank(pool, metric="sfda", executor=client.get_executor(), errors="row")
    assert table.models[-1] == "model2" and math.isnan(table[-1].score)
    assert set(table.errors) == {"model2"}
    assert "model2_toy_feature.npy" in table.errors["model2"]
    finished = [m for m in good.models if m != "model2"]
    assert table.models[:-1] == finished
    assert [r.score for r in table][:-1] == [good.scores[m] for m in finished]
    assert "error: model2:" in table.to_string() and "error" in table.to_csv().splitlines()[0]
    assert "error" not in good.to_csv().splitlines()[0] and "error" not in good.to_records()[0]

    serial = pedrank.rank(pool, metric="sfda", errors="row")
    assert serial.models == table.models and serial.errors == table.errors


def test_by_default_the_first_failing_model_raises_as_in_the_serial_run(tmp_path, client):
    pool = _write_pool(tmp_path)
    (tmp_path / "model3_toy_feature.npy").write_bytes(b"not a numpy file")
    with pytest.raises(FeatureFileError, match="model 'model3'") as serial:
        pedrank.rank(pool, metric="logme")
    with pytest.raises(FeatureFileError, match="model 'model3'") as pooled:  # its class and path survive the trip back
        pedrank.rank(pool, metric="logme", executor=client.get_executor())
    assert str(pooled.value) == str(serial.value) and "model 'model3'" in str(pooled.value)
    assert pooled.value.path == serial.value.path


def test_a_thread_pool_and_the_arguments_checked(tmp_path):
    pool = _write_pool(tmp_path, n_models=3)
    serial = pedrank.rank(pool, metric="gbc")
    with ThreadPoolExecutor(2) as executor:
        _same(pedrank.rank(pool, metric="gbc", executor=executor), serial)
    with pytest.raises(PedrankValueError, match="executor: found int; expected a concurrent.futures.Executor"):
        pedrank.rank(pool, metric="gbc", executor=2)
    with pytest.raises(PedrankValueError, match="errors: found 'skip'; expected 'raise' or 'row'"):
        pedrank.rank(pool, metric="gbc", errors="skip")
