"""The paper's numbers shipped in pedrank/data match the shared reference data and its README."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from pedrank.workflow import paper

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_twelve_models_eleven_datasets():
    assert len(paper.models()) == 12 and "moco-v1" in paper.models()
    assert len(paper.datasets()) == 11 and "sun397" in paper.datasets()


@pytest.mark.parametrize(
    "dataset, model, code_value",
    # The README's list of supplementary typos: the shipped table holds the code's values.
    [("cifar10", "moco-v1", 94.15), ("cifar10", "pcl-v1", 96.42), ("voc2007", "pcl-v1", 81.91),
     ("dtd", "infomin", 73.47), ("dtd", "simclr-v2", 74.71)],
)
def test_ground_truth_holds_the_codes_values_not_the_typos(dataset, model, code_value):
    assert paper.ground_truth(dataset)[model] == code_value


def test_reported_tau_lookup_and_baseline_fallback():
    assert paper.reported_weighted_tau("SFDA+PED", "dtd") == 0.907
    assert paper.reported_weighted_tau("GBC+PED", "aircraft", variant="grid_k") == 0.549
    assert paper.reported_weighted_tau("LogME", "pets", variant="grid_k") == 0.684
    assert math.isnan(paper.reported_weighted_tau("LogME", "sun397"))
    with pytest.raises(ValueError, match="method"):
        paper.reported_weighted_tau("Nope", "dtd")
    with pytest.raises(ValueError, match="dataset"):
        paper.ground_truth("imagenet")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared reference data is not beside this checkout")
def test_shipped_files_equal_the_shared_reference_data():
    for name in ("ssl_finetune_accuracy.csv", "paper_weighted_tau_ssl.csv"):
        shipped = (paper.DATA_DIR / name).read_text()
        assert shipped == (SHARED / name).read_text()
    with (SHARED / "paper_weighted_tau_ssl.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for dataset in paper.datasets():
            if dataset in row:
                reported = paper.reported_weighted_tau(row["method"], dataset, variant=row["variant"])
                assert reported == float(row[dataset])
