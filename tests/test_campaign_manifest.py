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
