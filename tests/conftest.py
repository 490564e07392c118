"""Shared fixtures: the authors' parity vectors and small random problems."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

_VECTOR_CANDIDATES = [
    os.environ.get("PEDRANK_VECTORS", ""),
    str(Path(__file__).resolve().parent / "data" / "authors_ped_metrics.npz"),
]


def _vectors_path() -> Path:
    for candidate in _VECTOR_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("tests/data/authors_ped_metrics.npz is missing")


@pytest.fixture(scope="session")
def vectors():
    """The authors' outputs on 8 deterministic cases (see tests/data/README.md)."""
    with np.load(_vectors_path()) as data:
        return {key: data[key] for key in data.files}


CASES = list(range(1, 9))


def make_problem(n_samples, n_features, n_classes, *, seed=0, separation=1.0, imbalance=False, dtype=np.float64):
    """Gaussian class clusters; every class has at least one sample."""
    rng = np.random.default_rng(seed)
    if imbalance:
        weights = rng.dirichlet(np.full(n_classes, 0.5))
        labels = rng.choice(n_classes, size=n_samples, p=weights)
    else:
        labels = rng.integers(0, n_classes, size=n_samples)
    labels[:n_classes] = np.arange(n_classes)
    centres = rng.normal(scale=separation, size=(n_classes, n_features))
    features = centres[labels] + rng.normal(size=(n_samples, n_features))
    return features.astype(dtype), labels
