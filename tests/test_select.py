"""pedrank.select / `pedrank select`: models and data in, features cached in the authors' layout, a ranking out.

Tiny torch modules on tiny generated images: every test runs in about a second, offline.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image")

from conftest import write_class_images  # noqa: E402 (tests/ is on sys.path under pytest)
from pedrank.frontends.cli import main  # noqa: E402
from pedrank.workflow.select import select  # noqa: E402

MODELS_PY = '''
import torch

def seeded(module, seed):
    # A generator of its own, not torch's global one: Dask's in-process workers build models in threads at once.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return module

def net(width, seed):
    return seeded(torch.nn.Sequential(
        torch.nn.Conv2d(3, width, 3), torch.nn.ReLU(), torch.nn.Conv2d(width, width, 3),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(width, 3)), seed)

def small():
    return net(4, 0)

def medium():
    return net(8, 1)

def wide():
    return net(6, 2)

def vectors():
    return seeded(torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)), 3)
'''


def _net(width: int, seed: int):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, width, 3), torch.nn.ReLU(), torch.nn.Conv2d(width, width, 3),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(width, 3))


class Counted(torch.nn.Module):
    """A module that counts its forward passes (across runs)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_class_images(tmp_path_factory.mktemp("data") / "shapes", [(12, 12)] * 8, seed=0)


@pytest.fixture(scope="module")
def npz(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 8)
    images = (rng.random((24, 12, 12, 3)) * 90 + 60 * labels[:, None, None, None]).astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, images=images, labels=labels)
    return path


@pytest.fixture(scope="module")
def models_py(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny_models.py"
    path.write_text(MODELS_PY)
    return path


def _pool():
    return {"small": Counted(_net(4, 0)), "medium": Counted(_net(8, 1)), "wide": Counted(_net(6, 2))}


def test_a_pool_on_an_image_folder_is_ranked_and_cached(images, tmp_path):
    pool = _pool()
    table = select(pool, images, metric="logme", cache_dir=tmp_path, batch_size=10)
    assert sorted(table.models) == ["medium", "small", "wide"]
    assert all(math.isfinite(r.score) and not r.cached and r.error is None for r in table)
    assert [r.score for r in table] == sorted((r.score for r in table), reverse=True)
    assert {m.calls for m in pool.values()} == {3}  # 24 images, batches of 10
    for name in pool:
        assert (tmp_path / f"{name}_shapes_feature.npy").is_file()
        assert (tmp_path / f"{name}_shapes_label.npy").is_file()
        key = json.loads((tmp_path / f"{name}_shapes_key.json").read_text())["key"]
        assert key["dataset"] == "shapes" and key["pooling"] == "mean"
    assert not list(tmp_path.glob(".*tmp"))

    again = select(pool, images, metric="logme", cache_dir=tmp_path)
    assert {m.calls for m in pool.values()} == {3}  # the second run extracts nothing
    assert all(r.cached and r.extract_seconds == 0.0 for r in again)
    assert again.scores == pytest.approx(table.scores, rel=1e-12)

    # the cache is the authors' layout: `rank` reads it as it is
    from pedrank import rank
    from pedrank.workflow.io import find_features

    ranked = rank(find_features([tmp_path], dataset="shapes"), metric="logme")
    assert ranked.scores == pytest.approx(table.scores, rel=1e-12)

    # another pooling is another key: extracted again
    select(pool, images, metric="logme", cache_dir=tmp_path, pooling="max")
    assert {m.calls for m in pool.values()} == {4}


def test_a_pool_on_an_npz_with_metric_forms_and_ped(npz, models_py):
    models = [f"{models_py}:small", f"{models_py}:medium", f"{models_py}:wide"]
    table = select(models, npz, metric="logme:exact", ped=True)
    assert sorted(table.models) == ["medium", "small", "wide"] and table.dataset == "blobs"
    assert table.ped and all(r.ped_steps is not None and math.isfinite(r.score) for r in table)
    plain = select(models, npz, metric="sfda")
    assert all(math.isfinite(r.score) for r in plain)


def test_an_interrupted_run_resumes_with_the_models_it_finished(images, tmp_path):
    pool = _pool()

    class Interrupt(torch.nn.Module):
        def forward(self, x):
            raise KeyboardInterrupt("stopped in the third model")

    broken = dict(pool, wide=Interrupt())
    with pytest.raises(KeyboardInterrupt, match="stopped in the third model"):
        select(broken, images, metric="logme", cache_dir=tmp_path)
    assert (pool["small"].calls, pool["medium"].calls) == (1, 1)
    assert not (tmp_path / "wide_shapes_key.json").exists() and not list(tmp_path.glob(".*tmp"))

    table = select(pool, images, metric="logme", cache_dir=tmp_path)
    assert (pool["small"].calls, pool["medium"].calls, pool["wide"].calls) == (1, 1, 1)
    cached = {r.model: r.cached for r in table}
    assert cached == {"small": True, "medium": True, "wide": False}


def test_a_bad_model_gets_its_reason_and_the_others_are_ranked(images, tmp_path, models_py):
    saved = tmp_path / "whole.pt"
    torch.save(_net(5, 4), saved)
    state = tmp_path / "state.pt"
    torch.save(_net(4, 9).state_dict(), state)
    models = {
        "unknown": "timm:surely_not_a_model",
        "missing": str(tmp_path / "missing.pt"),
        "small": f"{models_py}:small",
        "whole": str(saved),
        "state": f"{models_py}:small@{state}",
        "bare_state": str(state),
        "misfit": f"{models_py}:medium@{state}",
        "vectors": f"{models_py}:vectors",  # a model for 7-d vectors on images
        "nomodule": "not_a_module_anywhere:thing",
    }
    table = select(models, images, metric="sfda")
    errors = table.errors
    assert set(errors) == {"unknown", "missing", "bare_state", "misfit", "vectors", "nomodule"}
    assert "surely_not_a_model" in errors["unknown"]
    assert "missing.pt" in errors["missing"] and "no checkpoint file" in errors["missing"]
    assert "ARCH@CHECKPOINT" in errors["bare_state"]
    assert "do not fit" in errors["misfit"]
    assert "incompatible input of shape (1, 3, 12, 12)" in errors["vectors"]
    assert "not_a_module_anywhere" in errors["nomodule"]
    assert table.models[:3] and set(table.models[:3]) == {"small", "whole", "state"}
    assert all(math.isfinite(r.score) for r in table[:3]) and all(math.isnan(r.score) for r in table[3:])
    assert "error: unknown:" in table.to_string()
    record = {r["model"]: r for r in json.loads(table.to_json())}
    assert record["missing"]["score"] is None and "no checkpoint file" in record["missing"]["error"]


def test_layers_all_ranks_the_blocks_of_one_model(images, tmp_path):
    model = Counted(_net(4, 0))
    table = select({"small": model}, images, layers="all", metric="logme", cache_dir=tmp_path)
    assert sorted(table.models) == ["small@inner.0", "small@inner.2"]  # the parameter-free blocks and the head left out
    assert model.calls == 1  # every layer from one pass per batch
    assert {r.n_features for r in table} == {4}
    named = select({"small": model}, images, layers=["inner.2"], metric="logme", cache_dir=tmp_path)
    assert named.models == ["small@inner.2"] and named[0].cached and model.calls == 1


def test_the_command_line_end_to_end(images, models_py, tmp_path, capsys):
    out = tmp_path / "ranking.json"
    cache = tmp_path / "cache"
    argv = ["select", str(images), f"{models_py}:small", f"big={models_py}:medium", "timm:surely_not_a_model",
            "--metric", "logme", "--cache", str(cache), "--json", str(out), "--batch-size", "5", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "metric: logme, dataset: shapes" in printed and "error: timm-surely_not_a_model" in printed
    records = json.loads(out.read_text())
    assert [r["model"] for r in records][-1] == "timm-surely_not_a_model"
    assert {r["model"] for r in records[:2]} == {"small", "big"} and records[0]["cached"] is False
    assert main(argv) == 0
    assert all(r["cached"] for r in json.loads(out.read_text())[:2])
    assert main(["rank", str(cache), "--dataset", "shapes", "--metric", "logme", "--no-progress"]) == 0
    assert main(["select", str(images), "timm:surely_not_a_model", "--no-progress"]) == 1
    capsys.readouterr()
    assert main(["select", str(tmp_path / "nowhere"), f"{models_py}:small"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_a_thread_pool_executor_gives_the_serial_result(images, models_py):
    from concurrent.futures import ThreadPoolExecutor

    models = [f"{models_py}:small", f"{models_py}:medium", "timm:surely_not_a_model"]
    serial = select(models, images, metric="logme")
    with ThreadPoolExecutor(2) as executor:
        pooled = select(models, images, metric="logme", executor=executor)
    assert pooled.models == serial.models
    assert [r.score for r in pooled][:2] == [r.score for r in serial][:2]
    assert set(pooled.errors) == {"timm-surely_not_a_model"}


def test_a_dask_cluster_gives_the_serial_result(images, models_py, tmp_path):
    distributed = pytest.importorskip("distributed")
    models = [f"{models_py}:small", f"{models_py}:medium", f"{models_py}:wide", str(tmp_path / "missing.pt")]
    serial = select(models, images, metric="logme")
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pooled = select(models, images, metric="logme", client=client, cache_dir=tmp_path / "cache")
    assert pooled.models == serial.models
    assert [r.score for r in pooled][:3] == [r.score for r in serial][:3]
    assert set(pooled.errors) == {"missing"} and "no checkpoint file" in pooled.errors["missing"]
    assert len(list((tmp_path / "cache").glob("*_feature.npy"))) == 3


def test_a_dask_cluster_of_processes_gives_the_serial_result(images, models_py):
    """Real worker processes (the models travel as file.py:callable specs, the data as its path); ~10-20 s."""
    distributed = pytest.importorskip("distributed")
    models = [f"{models_py}:small", f"{models_py}:medium", "timm:surely_not_a_model"]
    serial = select(models, images, metric="logme")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pooled = select(models, images, metric="logme", client=client)
    assert pooled.models == serial.models
    assert [r.score for r in pooled][:2] == [r.score for r in serial][:2]
    assert set(pooled.errors) == {"timm-surely_not_a_model"}


def test_without_dask_the_scheduler_option_says_what_to_install(images, models_py, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)
    from pedrank import MissingDependencyError

    with pytest.raises(MissingDependencyError, match="pip install dask distributed"):
        select([f"{models_py}:small"], images, scheduler="tcp://127.0.0.1:1")


def test_bad_arguments_name_the_argument(images):
    from pedrank import PedrankValueError

    with pytest.raises(PedrankValueError, match="pooling"):
        select([_net(4, 0)], images, pooling="median")
    with pytest.raises(PedrankValueError, match="no class sub-folders"):
        select([_net(4, 0)], images / "class0")


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> Path:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    rows = ["text,label"] + [f"a {words[i % 6]} movie number {i},{int(i % 6 < 3)}" for i in range(24)]
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tinybert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "movie", "number", "good", "great", "fine", "bad",
             "awful", "poor"] + [str(i) for i in range(10)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    if tokenizer.convert_tokens_to_ids("good") == tokenizer.unk_token_id:
        # transformers 5 ignores vocab_file: every word became [UNK], every text the same features (a dead model,
        # which pedrank now refuses); it takes the vocabulary as vocab=
        tokenizer = transformers.BertTokenizerFast(vocab=str(folder / "vocab.txt"))
    assert tokenizer.convert_tokens_to_ids("good") == vocab.index("good")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_local_hugging_face_text_model_on_a_csv(texts, tiny_bert, tmp_path):
    models = {"bert": f"hf:{tiny_bert}", "absent": f"hf:{tmp_path / 'absent'}"}
    table = select(models, texts, metric="logme", cache_dir=tmp_path)
    assert table.models == ["bert", "absent"] and math.isfinite(table[0].score) and table[0].n_features == 16
    assert "absent" in table.errors["absent"]
    again = select({"bert": f"hf:{tiny_bert}"}, texts, metric="logme", cache_dir=tmp_path)
    assert again[0].cached and again[0].score == table[0].score
    layers = select({"bert": f"hf:{tiny_bert}"}, texts, metric="logme", layers="all", pooling="cls")
    assert sorted(layers.models) == ["bert@0", "bert@1", "bert@2"]  # the embeddings, then each block
    images_error = select({"bert": f"hf:{tiny_bert}"}, (np.zeros((4, 3, 8, 8)), np.arange(4) % 2)).errors["bert"]
    assert "text model" in images_error


def test_a_changed_checkpoint_file_misses_the_cache(images, tmp_path):
    path = tmp_path / "model.pt"
    torch.save(_net(4, 0), path)
    first = select([str(path)], images, metric="logme", cache_dir=tmp_path / "cache")
    second = select([str(path)], images, metric="logme", cache_dir=tmp_path / "cache")
    torch.save(_net(4, 7), path)  # new weights under the same name
    third = select([str(path)], images, metric="logme", cache_dir=tmp_path / "cache")
    assert (first[0].cached, second[0].cached, third[0].cached) == (False, True, False)
    assert first[0].score == second[0].score != third[0].score


# ------------------------------------------------------------------------------------------ issue 23


class Boom(torch.nn.Module):
    """A model whose own forward fails, whatever its input."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(64, 3)

    def forward(self, x):
        raise RuntimeError("boom")


class FixedBatch(torch.nn.Module):
    """Takes batches of exactly 4: a shape-worded failure, but on a later batch, so the model's own fault."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(64, 3)

    def forward(self, x):
        return self.head(x.reshape(4, 64))


def test_a_model_failing_in_its_own_forward_is_told_apart_from_an_input_it_rejects(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.arange(10) % 2
    grey = tmp_path / "grey.npz"
    np.savez(grey, images=(rng.random((10, 8, 8)) * 255).astype(np.uint8), labels=labels)
    torch.manual_seed(0)
    good = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 2))
    models = {"boom": Boom(), "rgb": _net(4, 0), "fixed": FixedBatch(), "good": good}
    table = select(models, grey, metric="logme", batch_size=4)  # batches of 4, 4 and 2
    errors = table.errors
    assert set(errors) == {"boom", "rgb", "fixed"} and math.isfinite(table[0].score)

    assert "RuntimeError: boom" in errors["boom"] and "inside its own forward" in errors["boom"]
    assert "incompatible input" not in errors["boom"] and "(1, 1, 8, 8)" not in errors["boom"]

    # a 3-channel model on grey images: the input's fault, with torch's own words
    assert errors["rgb"].startswith("incompatible input of shape (1, 1, 8, 8)")
    assert "RuntimeError" in errors["rgb"] and "channels" in errors["rgb"]

    # a size error only on the last batch: the earlier batches had the same sample shape
    assert "incompatible input" not in errors["fixed"]
    assert "inside its own forward" in errors["fixed"] and "on batch 3 of 3, after taking 2" in errors["fixed"]
    assert "invalid for input of size" in errors["fixed"]


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory) -> Path:
    """60 PNGs in 3 classes, two of them broken: class1/07.png truncated, class2/03.png not an image at all."""
    root = write_class_images(tmp_path_factory.mktemp("data") / "broken", [(8, 8)] * 20, seed=4, name="{:02d}.png")
    whole = (root / "class1" / "07.png").read_bytes()
    (root / "class1" / "07.png").write_bytes(whole[:len(whole) // 2])
    (root / "class2" / "03.png").write_bytes(b"not a png at all")
    return root


def test_a_corrupt_image_is_bad_input_that_names_the_file(corrupt, models_py, capsys):
    from pedrank import PedrankValueError
    from pedrank.workflow.select import BadImageError

    with pytest.raises(BadImageError, match=r"class1/07\.png") as caught:
        select([f"{models_py}:small", f"{models_py}:medium"], corrupt, metric="logme")
    assert isinstance(caught.value, PedrankValueError) and caught.value.path.endswith("07.png")
    assert "bad_images='skip'" in str(caught.value) and "truncated" in caught.value.reason
    with pytest.raises(PedrankValueError, match="bad_images: found 'ignore'"):
        select([f"{models_py}:small"], corrupt, bad_images="ignore")

    assert main(["select", str(corrupt), f"{models_py}:small", "--metric", "logme", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "07.png" in err and "--bad-images skip" in err and "Traceback" not in err


def test_skipped_images_drop_the_same_rows_for_every_model_cached_or_not(corrupt, models_py, tmp_path, capsys):
    from concurrent.futures import ThreadPoolExecutor

    from pedrank.workflow.select import BadImageError, BadImageWarning

    models = {"small": f"{models_py}:small", "medium": f"{models_py}:medium"}
    cache = tmp_path / "cache"
    expected = np.repeat(np.arange(3), [20, 19, 19])  # class1 and class2 each lose a file
    pattern = r"skipped 2 unreadable image file\(s\) of 60 .*class1/07\.png .*class2/03\.png"

    with pytest.warns(BadImageWarning, match=pattern):
        fresh = select(models, corrupt, metric="logme", bad_images="skip", cache_dir=cache)
    assert fresh.errors == {} and fresh.skipped == ["class1/07.png", "class2/03.png"]
    for name in models:
        assert np.array_equal(np.load(cache / f"{name}_broken_label.npy"), expected)
        assert np.load(cache / f"{name}_broken_feature.npy").shape[0] == 58

    with pytest.warns(BadImageWarning, match=pattern):
        cached = select(models, corrupt, metric="logme", bad_images="skip", cache_dir=cache)
    assert all(r.cached for r in cached) and cached.skipped == fresh.skipped
    assert cached.scores == fresh.scores

    with pytest.warns(BadImageWarning, match=pattern), ThreadPoolExecutor(2) as executor:
        pooled = select(models, corrupt, metric="logme", bad_images="skip", executor=executor)
    assert pooled.scores == fresh.scores and not any(r.cached for r in pooled)

    # the cache remembers what it left out: "raise" fails on it as a fresh run does
    with pytest.raises(BadImageError, match=r"class1/07\.png"):
        select(models, corrupt, metric="logme", cache_dir=cache)

    argv = ["select", str(corrupt), f"{models_py}:small", "--metric", "logme", "--bad-images", "skip",
            "--no-progress", "--cache", str(cache)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "pedrank select: warning: data: skipped 2 unreadable image file(s) of 60" in err and "03.png" in err


@pytest.mark.skipif(not hasattr(os, "umask") or os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_cache_files_get_the_mode_of_a_normal_file_under_the_umask(images, tmp_path, umask):
    previous = os.umask(umask)
    try:
        select({"small": _net(4, 0)}, images, metric="logme", cache_dir=tmp_path)
    finally:
        os.umask(previous)
    written = sorted(tmp_path.iterdir())
    assert [p.name for p in written] == ["small_shapes_feature.npy", "small_shapes_key.json",
                                         "small_shapes_label.npy"]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {oct(0o666 & ~umask)}


def test_select_says_how_sure_the_ranking_is(images, tmp_path, models_py, capsys):
    # confidence=B: the features of every model scored together on B resamples, as rank(confidence=B) would
    # score the cached features; the same seed, the same table.
    from pedrank import rank
    from pedrank.workflow.io import find_features

    table = select(_pool(), images, metric="sfda", cache_dir=tmp_path, confidence=20, random_state=3)
    assert table.n_resamples == 20 and table.seed == 3
    assert all(r.p_best is not None and r.rank_low <= r.rank_high for r in table)
    assert sum(r.p_best for r in table) == pytest.approx(1.0)
    again = rank(find_features(tmp_path, dataset="shapes"), metric="sfda", confidence=20, random_state=3)
    assert {r.model: (r.score, r.p_best, r.rank_low, r.rank_high) for r in table} == {
        r.model: (r.score, r.p_best, r.rank_low, r.rank_high) for r in again}
    assert table.top1_stability == again.top1_stability
    assert "top-1 stability" in table.to_string() and "p_best" in table.to_csv().splitlines()[0]
    # the command line: the same columns, and a one-line warning when the top model is not separated (a
    # threshold above its P(best) makes it fire whatever the draw)
    capsys.readouterr()
    models = [f"{models_py}:small", f"{models_py}:medium", f"{models_py}:wide"]
    code = main(["select", str(images), *models, "--metric", "sfda", "--confidence", "20", "--seed", "3",
                 "--separated", "1.0", "--no-progress", "--csv", str(tmp_path / "out.csv")])
    assert code == 0
    err = capsys.readouterr().err
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert {"p_best", "rank_low", "rank_high", "top1_stability"} <= set(header)
    best = float((tmp_path / "out.csv").read_text().splitlines()[1].split(",")[header.index("p_best")])
    assert ("not separated; fine-tune both" in err) == (best < 1.0), err
    assert main(["select", str(images), *models, "--metric", "sfda", "--confidence", "0"]) == 2


class _HeadFirst(torch.nn.Module):
    """A network that declares its head before its body: the last nn.Linear declared is a body layer."""

    def __init__(self, body, head):
        super().__init__()
        self.head = head
        self.body = body
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(self.body(x))


def _body_and_head(width, seed):
    net = _net(width, seed)  # ... Flatten, Linear(width, 3)
    torch.manual_seed(seed + 100)
    return torch.nn.Sequential(*net[:-1], torch.nn.Linear(width, 5), torch.nn.ReLU()), torch.nn.Linear(5, 3)


def test_the_default_layer_is_the_head_the_forward_pass_runs_last(images):
    # The body's nn.Linear, declared last, was read as the head: its input (width 4 or 6) instead of the head's (5).
    parts = {"a": _body_and_head(4, 0), "b": _body_and_head(6, 1)}
    plain = {name: torch.nn.Sequential(*body, head) for name, (body, head) in parts.items()}
    head_first = {name: _HeadFirst(body, head) for name, (body, head) in parts.items()}
    expected = select(plain, images, metric="logme", batch_size=10)
    table = select(head_first, images, metric="logme", batch_size=10)
    assert table.scores == pytest.approx(expected.scores, rel=1e-6)
    assert {m.calls for m in head_first.values()} == {3}  # one forward pass per batch: the head found in the first


# ------------------------------------------------------------------------------------------ the cache's key, the seed
# and max_samples (audit: four silent wrong answers)


def _records(path: Path) -> dict:
    return {r["model"]: r for r in json.loads(path.read_text())}


@pytest.fixture(scope="module")
def labelled_texts(tmp_path_factory) -> Path:
    """A CSV with two text columns and two label columns that disagree (sentiment: the word; topic: i % 3)."""
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    rows = ["text,title,sentiment,topic"] + [f"a {words[i % 6]} movie number {i},number {i % 3} {words[i % 6]},"
                                             f"{int(i % 6 < 3)},{i % 3}" for i in range(24)]
    path = tmp_path_factory.mktemp("data") / "multi.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_columns_read_are_in_the_cache_key(labelled_texts, tiny_bert, tmp_path):
    # The key ignored --label-column / --text-column: the second run read the first one's labels and features.
    cache, out = tmp_path / "cache", tmp_path / "out.json"
    base = ["select", str(labelled_texts), f"bert=hf:{tiny_bert}", "--metric", "logme", "--cache", str(cache),
            "--json", str(out), "--no-progress"]
    assert main([*base, "--label-column", "sentiment"]) == 0
    sentiment = _records(out)["bert"]
    assert main([*base, "--label-column", "topic"]) == 0
    topic = _records(out)["bert"]
    assert (sentiment["cached"], topic["cached"]) == (False, False)
    np.testing.assert_array_equal(np.load(cache / "bert_multi_label.npy"), np.arange(24) % 3)
    assert topic["score"] != sentiment["score"]
    assert main([*base, "--label-column", "topic", "--text-column", "title"]) == 0
    title = _records(out)["bert"]
    assert not title["cached"] and title["score"] != topic["score"]
    assert main([*base, "--label-column", "topic", "--text-column", "title"]) == 0
    assert _records(out)["bert"]["cached"] and _records(out)["bert"]["score"] == title["score"]
    # the same columns named or found by default: the same data
    assert main([*base[:2], f"bert=hf:{tiny_bert}", *base[3:], "--text-column", "text", "--label-column", "topic"]) == 0
    assert main([*base[:2], f"bert=hf:{tiny_bert}", *base[3:], "--label-column", "topic"]) == 0
    assert _records(out)["bert"]["cached"]


class _FakeDataset:
    """The little of a ``datasets.Dataset`` that select reads (``datasets`` is not in the test extra)."""

    def __init__(self, columns: dict, fingerprint: str):
        self._columns = columns
        self._fingerprint = fingerprint
        self.column_names = list(columns)

    def __getitem__(self, column):
        return self._columns[column]


def test_the_columns_of_a_hugging_face_dataset_are_in_the_cache_key(images, models_py, tmp_path, monkeypatch):
    import sys
    import types

    from pedrank.workflow.select import load_data

    pictures = [PIL.open(path).convert("RGB") for path in sorted(images.glob("class*/*.png"))]
    shape = np.repeat(np.arange(3), 8)
    colour = np.arange(24) % 2
    dataset = _FakeDataset({"image": pictures, "shape": shape.tolist(), "colour": colour.tolist()}, "f00d")
    fake = types.ModuleType("datasets")
    fake.DatasetDict = type("DatasetDict", (dict,), {})
    fake.load_from_disk = lambda path: dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    folder = tmp_path / "hfshapes"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{}")

    by_shape, by_colour = load_data(folder, label_column="shape"), load_data(folder, label_column="colour")
    assert by_shape.fingerprint != by_colour.fingerprint
    assert load_data(folder, label_column="shape").fingerprint == by_shape.fingerprint
    cache = tmp_path / "cache"
    first = select({"small": f"{models_py}:small"}, folder, label_column="shape", metric="logme", cache_dir=cache)
    second = select({"small": f"{models_py}:small"}, folder, label_column="colour", metric="logme", cache_dir=cache)
    assert (first[0].cached, second[0].cached) == (False, False) and first[0].score != second[0].score
    np.testing.assert_array_equal(np.load(cache / "small_hfshapes_label.npy"), colour)
    # a column the dataset lacks is named, not a KeyError from inside the dataset
    from pedrank import PedrankValueError

    with pytest.raises(PedrankValueError, match=r"^label_column: found 'kind'; the dataset .* has columns \['image', "
                                                r"'shape', 'colour'\]"):
        load_data(folder, label_column="kind")


WEIGHTS_MODELS = '''
import torch

WEIGHTS = {weights!r}

def net():
    # The architecture here, the weights in a file of the model's own that the spec does not name.
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(4, 3))
    module.load_state_dict(torch.load(WEIGHTS))
    return module
'''


EDITED_MODELS = '''
import torch

def net():
    # The weights drawn here now, with a seed of the code's own.
    torch.manual_seed(5)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 3))
'''


def _small_state(seed: int, path: Path) -> None:
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(4, 3))
    torch.save(module.state_dict(), path)


def test_the_weights_a_callable_loads_are_in_the_cache_key(images, tmp_path):
    # Only the .py's digest was in the key: new weights in the file the callable reads gave the old features.
    weights = tmp_path / "weights.pt"
    source = tmp_path / "own_weights.py"
    source.write_text(WEIGHTS_MODELS.format(weights=str(weights)))
    cache = tmp_path / "cache"
    spec = {"net": f"{source}:net"}
    _small_state(0, weights)
    first = select(spec, images, metric="logme", cache_dir=cache)
    second = select(spec, images, metric="logme", cache_dir=cache)
    _small_state(1, weights)
    third = select(spec, images, metric="logme", cache_dir=cache)
    assert (first[0].cached, second[0].cached, third[0].cached) == (False, True, False)
    assert first[0].score == second[0].score != third[0].score
    assert "|weights:" in json.loads((cache / "net_shapes_key.json").read_text())["key"]["preprocessing"]


def test_an_importable_module_s_weights_are_in_the_cache_key(images, tmp_path, monkeypatch):
    # MODULE:CALLABLE from the current directory, on the command line: its weights file changed, then its code.
    import sys

    name = "pedrank_test_importable_models"
    weights = tmp_path / "weights.pt"
    (tmp_path / f"{name}.py").write_text(WEIGHTS_MODELS.format(weights=str(weights)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    out = tmp_path / "out.json"
    argv = ["select", str(images), f"{name}:net", "--metric", "logme", "--cache", str(tmp_path / "cache"),
            "--json", str(out), "--no-progress"]
    try:
        _small_state(0, weights)
        runs = []
        for change in (None, None, lambda: _small_state(2, weights),
                       lambda: (tmp_path / f"{name}.py").write_text(EDITED_MODELS)):
            if change is not None:
                change()
                sys.modules.pop(name, None)  # a new process imports the module as it is now
            assert main(argv) == 0
            runs.append(_records(out)["net"])
    finally:
        sys.modules.pop(name, None)
    assert [r["cached"] for r in runs] == [False, True, False, False]
    assert runs[0]["score"] == runs[1]["score"] != runs[2]["score"] != runs[3]["score"]


def test_a_changed_local_hugging_face_folder_misses_the_cache(texts, tiny_bert, tmp_path):
    import shutil

    import transformers

    folder = tmp_path / "bert"
    shutil.copytree(tiny_bert, folder)
    first = select({"bert": f"hf:{folder}"}, texts, metric="logme", cache_dir=tmp_path / "cache")
    second = select({"bert": f"hf:{folder}"}, texts, metric="logme", cache_dir=tmp_path / "cache")
    torch.manual_seed(9)  # other weights in the same folder
    transformers.BertModel(transformers.BertConfig.from_pretrained(folder)).save_pretrained(folder)
    third = select({"bert": f"hf:{folder}"}, texts, metric="logme", cache_dir=tmp_path / "cache")
    assert (first[0].cached, second[0].cached, third[0].cached) == (False, True, False)
    assert first[0].score == second[0].score != third[0].score


@pytest.fixture(scope="module")
def vectors_npz(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 20)
    inputs = (rng.normal(size=(60, 7)) + 0.7 * labels[:, None]).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "vectors.npz"
    np.savez(path, inputs=inputs, labels=labels)
    return path


def test_the_seed_reaches_the_metric_without_confidence(vectors_npz, models_py, tmp_path):
    # random_state / --seed / --option random_state=S were dropped unless confidence was given: nleep gave the
    # same scores for every seed. Now as rank: the seed reaches a metric that takes one.
    from pedrank import PedrankValueError, rank
    from pedrank.workflow.io import find_features

    models = {"vectors": f"{models_py}:vectors"}
    cache = tmp_path / "cache"
    scores = {seed: select(models, vectors_npz, metric="nleep", random_state=seed, cache_dir=cache)[0].score
              for seed in (1, 2)}
    assert scores[1] != scores[2]
    features = find_features(cache, dataset="vectors")
    for seed in (1, 2):
        assert rank(features, metric="nleep", random_state=seed)[0].score == scores[seed]
    assert select(models, vectors_npz, metric="nleep", random_state=1)[0].score == scores[1]  # the same call again
    assert select(models, vectors_npz, metric="nleep", random_state=np.random.default_rng(1))[0].score \
        == rank(features, metric="nleep")[0].score  # a Generator seeds only the bootstrap, as in rank
    with pytest.raises(PedrankValueError, match="random_state"):
        select(models, vectors_npz, metric="nleep", random_state=-1)

    out = tmp_path / "out.json"
    argv = ["select", str(vectors_npz), f"{models_py}:vectors", "--metric", "nleep", "--json", str(out),
            "--no-progress"]
    for extra, seed in ((["--seed", "1"], 1), (["--seed", "2"], 2), (["--option", "random_state=2"], 2)):
        assert main([*argv, *extra]) == 0
        assert _records(out)["vectors"]["score"] == pytest.approx(scores[seed], rel=1e-12)


def test_max_samples_keeps_every_class_and_the_same_rows_for_every_model(tmp_path):
    # The first N files were taken: 3 classes x 12 images at max 20 gave labels [12 8], a 2-class problem.
    from pedrank import PedrankValueError

    folder = write_class_images(tmp_path / "twelve", [(12, 12)] * 12, seed=4)
    cache = tmp_path / "cache"
    models = {"small": _net(4, 0), "medium": _net(8, 1)}
    table = select(models, folder, metric="logme", max_samples=20, cache_dir=cache)
    assert all(math.isfinite(r.score) for r in table)
    labels = {name: np.load(cache / f"{name}_twelve_label.npy") for name in models}
    np.testing.assert_array_equal(np.bincount(labels["small"]), [7, 7, 6])
    np.testing.assert_array_equal(labels["small"], labels["medium"])
    # the rows kept, seeded: a folder of those files alone gives the same features and score
    import shutil

    from pedrank.workflow.select import load_data

    kept = load_data(folder).subset(20)
    assert len(kept.items) == 20 and [Path(p).parent.name for p in kept.items].count("class2") == 6
    for path in kept.items:
        (tmp_path / "kept" / "twelve" / Path(path).parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tmp_path / "kept" / "twelve" / Path(path).parent.name)
    alone = select({"small": _net(4, 0)}, tmp_path / "kept" / "twelve", metric="logme", cache_dir=tmp_path / "alone")
    np.testing.assert_array_equal(np.load(cache / "small_twelve_feature.npy"),
                                  np.load(tmp_path / "alone" / "small_twelve_feature.npy"))
    assert alone[0].score == {r.model: r.score for r in table}["small"]
    again = select(models, folder, metric="logme", max_samples=20)
    assert again.scores == table.scores
    with pytest.raises(PedrankValueError, match="max_samples"):
        select(models, folder, metric="logme", max_samples=0)


def test_max_samples_is_stratified_for_every_kind_of_data(tmp_path):
    from pedrank.workflow.select import load_data
    from pedrank.workflow.select.data import stratified_rows

    labels = np.repeat([0, 1, 2], [30, 10, 2])  # sorted by class, as files and many .npz are
    rows = stratified_rows(labels, 14)
    np.testing.assert_array_equal(np.bincount(labels[rows]), [10, 3, 1])  # the shares, at least one each
    np.testing.assert_array_equal(rows, stratified_rows(labels, 14))  # seeded: the same rows every time
    assert list(rows) == sorted(rows) and len(set(rows)) == 14
    assert len(np.unique(labels[stratified_rows(labels, 2)])) == 2  # fewer rows than classes: one class each
    npz = tmp_path / "sorted.npz"
    np.savez(npz, inputs=np.arange(42 * 3, dtype=np.float32).reshape(42, 3), labels=labels)
    csv = tmp_path / "sorted.csv"
    csv.write_text("text,label\n" + "".join(f"text {i},{c}\n" for i, c in enumerate(labels)))
    for data in (npz, csv, (np.arange(42 * 3, dtype=np.float32).reshape(42, 3), labels)):
        kept = load_data(data).subset(14)
        np.testing.assert_array_equal(np.bincount(kept.labels.astype(int)), [10, 3, 1])
        np.testing.assert_array_equal(kept.labels, labels[rows])
        assert len(kept.items) == 14 and kept.fingerprint != load_data(data).fingerprint
    assert load_data(csv).subset(14).items == [f"text {i}" for i in rows]
