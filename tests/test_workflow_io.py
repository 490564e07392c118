"""pedrank.io: feature files in the authors' layout, .npz and torch files; score and truth tables."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pedrank.workflow.evaluate import read_truth
from pedrank.workflow.io import (
    FeatureFileError,
    find_authors_layout,
    find_features,
    load_features,
    load_reference,
    read_accuracies,
    read_scores,
    split_authors_name,
)


def _arrays(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.arange(n) % 3


def _authors(directory, model, dataset, seed=0):
    x, y = _arrays(seed)
    np.save(directory / f"{model}_{dataset}_feature.npy", x)
    np.save(directory / f"{model}_{dataset}_label.npy", y)
    return x, y


def test_authors_layout_with_several_datasets(tmp_path):
    a = _authors(tmp_path, "moco-v1", "cifar10", 0)
    _authors(tmp_path, "moco-v1", "dtd", 1)
    c = _authors(tmp_path, "deep_cluster", "cifar10", 2)  # an underscore in the model name
    with pytest.raises(FeatureFileError, match="several datasets"):
        find_features(tmp_path)
    pool = find_features(tmp_path, dataset="cifar10")
    assert list(pool) == ["deep_cluster", "moco-v1"]
    assert pool["moco-v1"].dataset == "cifar10"
    x, y = pool["moco-v1"].load()
    np.testing.assert_array_equal(x, a[0])
    np.testing.assert_array_equal(y, a[1])
    np.testing.assert_array_equal(pool["deep_cluster"].load()[0], c[0])
    with pytest.raises(FeatureFileError, match="'pets'.*cifar10, dtd|'pets'"):
        find_features(tmp_path, dataset="pets")


@pytest.mark.parametrize("dataset", ["oxford_pets", "stanford_cars"])
def test_a_dataset_name_with_underscores_is_read_whole(tmp_path, dataset):
    vit = _authors(tmp_path, "vit_b16", dataset, 0)
    resnet = _authors(tmp_path, "resnet_50", dataset, 1)
    for chosen in (None, dataset):
        pool = find_features(tmp_path, dataset=chosen)
        assert list(pool) == ["resnet_50", "vit_b16"]
        assert {source.dataset for source in pool.values()} == {dataset}
        np.testing.assert_array_equal(pool["vit_b16"].load()[0], vit[0])
        np.testing.assert_array_equal(pool["resnet_50"].load()[0], resnet[0])
    # the last word alone is no dataset of these files
    with pytest.raises(FeatureFileError, match=re.escape(f"datasets found: ['{dataset}']")):
        find_features(tmp_path, dataset=dataset.rsplit("_", 1)[1])


def test_a_folder_of_several_datasets_with_underscores(tmp_path):
    datasets = ["oxford_pets", "stanford_cars", "pets", "cifar10"]
    models = ["vit_b16", "deep_cluster", "moco-v1"]
    written = {(m, d): _authors(tmp_path, m, d, seed=10 * i + j)
               for i, d in enumerate(datasets) for j, m in enumerate(models)}
    reference = np.random.default_rng(7).normal(size=(20, 3))
    np.save(tmp_path / "vit_b16_reference.npy", reference)
    with pytest.raises(FeatureFileError, match=r"several datasets \(cifar10, oxford_pets, pets, stanford_cars\)"):
        find_features(tmp_path)
    for dataset in datasets:
        pool = find_features(tmp_path, dataset=dataset)
        assert sorted(pool) == sorted(models)
        for model, source in pool.items():
            assert source.dataset == dataset
            x, y = source.load()
            np.testing.assert_array_equal(x, written[(model, dataset)][0])
            np.testing.assert_array_equal(y, written[(model, dataset)][1])
        # the model is named without the dataset, so its reference statistics beside it are found
        np.testing.assert_array_equal(pool["vit_b16"].load_reference(), reference)
    assert set(find_authors_layout(tmp_path)) == {(m, d) for m in models for d in datasets}


def test_an_unknown_dataset_with_underscores_needs_its_name(tmp_path):
    x, _ = _authors(tmp_path, "vit_b16", "my_data")
    # unknown to pedrank: the documented fallback splits at the last underscore
    assert list(find_features(tmp_path)) == ["vit_b16_my"]
    pool = find_features(tmp_path, dataset="my_data")
    assert list(pool) == ["vit_b16"] and pool["vit_b16"].dataset == "my_data"
    np.testing.assert_array_equal(pool["vit_b16"].load()[0], x)


@pytest.mark.parametrize(
    "stem, dataset, expected",
    [
        ("vit_b16_oxford_pets", None, ("vit_b16", "oxford_pets")),
        ("vit_b16_oxford_pets", "oxford_pets", ("vit_b16", "oxford_pets")),
        ("resnet_50_stanford_cars", None, ("resnet_50", "stanford_cars")),
        ("deep_cluster_cifar10", None, ("deep_cluster", "cifar10")),
        ("swav_pets", "pets", ("swav", "pets")),
        ("vit_oxford_pets", "pets", ("vit", "oxford_pets")),  # the longer known name wins
        ("a_b_c_d", "c_d", ("a_b", "c_d")),
        ("a_b_c_d", None, ("a_b_c", "d")),
        ("oxford_pets", None, ("oxford", "pets")),  # a known name needs a model before it
        ("pets", None, None),
        ("_pets", None, None),
    ],
)
def test_split_authors_name(stem, dataset, expected):
    assert split_authors_name(stem, dataset) == expected


def test_npz_and_explicit_files(tmp_path):
    x, y = _arrays(3)
    np.savez(tmp_path / "vit.npz", features=x, labels=y)
    pool = find_features([tmp_path / "vit.npz"])
    assert list(pool) == ["vit"]
    loaded = pool["vit"].load()
    np.testing.assert_array_equal(loaded[0], x)
    np.testing.assert_array_equal(loaded[1], y)


def test_torch_files(tmp_path):
    torch = pytest.importorskip("torch")
    x, y = _arrays(4)
    torch.save({"features": torch.from_numpy(x).to(torch.bfloat16), "labels": torch.from_numpy(y)},
               tmp_path / "net.pt")
    features, labels = load_features(tmp_path / "net.pt")
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, x, rtol=1e-2, atol=1e-2)
    np.testing.assert_array_equal(labels, y)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(FeatureFileError, match="dict"):
        load_features(tmp_path / "list.pt")


def test_reference_files_are_found_beside_the_features_and_not_taken_for_models(tmp_path):
    _authors(tmp_path, "byol", "pets")
    ref = np.random.default_rng(9).normal(size=(20, 3))
    np.save(tmp_path / "byol_reference.npy", ref)
    np.savez(tmp_path / "swav_reference.npz", mean=np.zeros(3), std=np.ones(3))
    x, y = _arrays(5)
    np.savez(tmp_path / "swav.npz", features=x, labels=y)
    pool = find_features(tmp_path)
    assert list(pool) == ["byol", "swav"]
    np.testing.assert_array_equal(pool["byol"].load_reference(), ref)
    mean, std = pool["swav"].load_reference()
    np.testing.assert_array_equal(std, np.ones(3))
    with pytest.raises(FeatureFileError, match="mean"):
        np.savez(tmp_path / "bad_reference.npz", average=np.zeros(3))
        load_reference(tmp_path / "bad_reference.npz")


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda d: np.save(d / "m_ds_feature.npy", np.zeros((4, 2))), "m_ds_label.npy is missing"),
        (lambda d: np.savez(d / "m.npz", feature=np.zeros((4, 2)), labels=np.zeros(4)), "missing 'features'"),
        (lambda d: np.savez(d / "m.npz", features=np.zeros((4, 2)), labels=np.zeros(5)), "one label per row"),
        (lambda d: np.savez(d / "m.npz", features=np.zeros((4, 2, 2)), labels=np.zeros(4)), "2-D"),
        (lambda d: (d / "m.npz").write_bytes(b"not a zip"), "not a readable"),
    ],
)
def test_bad_files_name_the_file_and_the_reason(tmp_path, make, reason):
    make(tmp_path)
    with pytest.raises(FeatureFileError, match=re.escape(reason)) as info:
        for source in find_features(tmp_path).values():
            source.load()
    assert reason in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_an_empty_directory_and_a_missing_path(tmp_path):
    with pytest.raises(FeatureFileError, match="no feature files"):
        find_features(tmp_path)
    with pytest.raises(FeatureFileError, match="no such file"):
        find_features(tmp_path / "nope")


def test_duplicate_models_are_refused(tmp_path):
    x, y = _arrays()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "a" / "m.npz", features=x, labels=y)
    np.savez(tmp_path / "b" / "m.npz", features=x, labels=y)
    with pytest.raises(FeatureFileError, match="also given by"):
        find_features([tmp_path / "a", tmp_path / "b"])


def test_plain_npy_needs_shared_labels(tmp_path):
    x, y = _arrays()
    np.save(tmp_path / "feats.npy", x)
    np.save(tmp_path / "labels.npy", y)
    with pytest.raises(FeatureFileError, match="no labels"):
        find_features([tmp_path / "feats.npy"])
    pool = find_features([tmp_path / "feats.npy"], labels=tmp_path / "labels.npy")
    np.testing.assert_array_equal(pool["feats"].load()[1], y)


def test_read_accuracies(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("model,cifar10,dtd\na,90.5,70\nb,80,\n")
    assert read_accuracies(path, "cifar10") == {"a": 90.5, "b": 80.0}
    assert read_accuracies(path, "dtd") == {"a": 70.0}
    with pytest.raises(FeatureFileError, match=r"several accuracy columns \['cifar10', 'dtd'\]"):
        read_accuracies(path)
    with pytest.raises(FeatureFileError, match="no column is named 'pets'"):
        read_accuracies(path, "pets")
    # The plain layout, as pedrank.workflow.evaluate.read_truth reads it: one numeric column under any name.
    plain = tmp_path / "plain.csv"
    plain.write_text("model,accuracy,params\na,0.9,25\nb,0.8,60\n")
    assert read_accuracies(plain) == read_accuracies(plain, "cifar10") == {"a": 0.9, "b": 0.8}
    assert read_accuracies(plain) == read_truth(plain, "cifar10").accuracies
    (tmp_path / "bad.csv").write_text("model,notes\na,good\n")
    with pytest.raises(FeatureFileError, match="no numeric accuracy column"):
        read_accuracies(tmp_path / "bad.csv")


def test_read_scores_json_records_mapping_and_csv(tmp_path):
    records = [{"model": "a", "score": 1.5, "dataset": "dtd", "metric": "sfda"},
               {"model": "b", "score": None, "dataset": "dtd", "metric": "sfda"}]
    (tmp_path / "s.json").write_text(json.dumps(records))
    scores, info = read_scores(tmp_path / "s.json")
    assert scores["a"] == 1.5 and np.isnan(scores["b"])
    assert info == {"dataset": "dtd", "metric": "sfda"}
    (tmp_path / "m.json").write_text(json.dumps({"a": 1, "b": 2}))
    assert read_scores(tmp_path / "m.json") == ({"a": 1.0, "b": 2.0}, {})
    (tmp_path / "s.csv").write_text("model,score\na,0.5\nb,0.25\n")
    assert read_scores(tmp_path / "s.csv")[0] == {"a": 0.5, "b": 0.25}
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(FeatureFileError, match="broken.json"):
        read_scores(tmp_path / "broken.json")
    (tmp_path / "norecord.json").write_text(json.dumps([{"name": "a"}]))
    with pytest.raises(FeatureFileError, match="record 0"):
        read_scores(tmp_path / "norecord.json")
