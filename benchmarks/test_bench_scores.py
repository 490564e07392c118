"""pytest-benchmark timings of pedrank against pedrank.reference and the Gram-matrix floor.

    pytest benchmarks/ --benchmark-only                      # small (CI-sized) shapes
    PEDRANK_BENCH_LARGE=1 pytest benchmarks/ --benchmark-only  # also the two large shapes (minutes, GBs)

Speed is measured here, never asserted; benchmarks/table.py prints the summary table with peak memory.
"""

import os

import numpy as np
import pytest

import pedrank
import pedrank.reference
from _data import SHAPES, make_features
from pedrank import _core
from pedrank.reference.ped import ped_step as reference_ped_step
from pedrank.scores.ped import rescaling_statistics

LARGE = os.environ.get("PEDRANK_BENCH_LARGE") == "1"
SHAPE_NAMES = ["small"] + (["large", "many_classes"] if LARGE else [])
IMPLEMENTATIONS = {"pedrank": pedrank, "reference": pedrank.reference}


@pytest.fixture(scope="module", params=SHAPE_NAMES)
def data(request):
    n, d, n_classes = SHAPES[request.param]
    features, labels = make_features(n, d, n_classes)
    return request.param, features, labels


def _rounds(shape_name, implementation="pedrank"):
    if shape_name == "small":
        return 5
    return 1


def _run(benchmark, shape_name, function, *args, implementation="pedrank", **kwargs):
    return benchmark.pedantic(function, args=args, kwargs=kwargs, rounds=_rounds(shape_name, implementation),
                              iterations=1, warmup_rounds=0)


def test_gram_float32(benchmark, data):
    shape_name, features, _ = data
    _run(benchmark, shape_name, lambda x: x.T @ x, features)


def test_gram_float64(benchmark, data):
    shape_name, features, _ = data
    features64 = features.astype(np.float64)
    _run(benchmark, shape_name, lambda x: x.T @ x, features64)


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("metric", ["logme", "sfda", "gbc"])
def test_score(benchmark, data, metric, implementation):
    shape_name, features, labels = data
    if shape_name == "many_classes":
        pytest.skip("the many-class shape is for PED")
    function = getattr(IMPLEMENTATIONS[implementation], metric)
    _run(benchmark, shape_name, function, features, labels, implementation=implementation)


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_ped_step(benchmark, data, implementation):
    shape_name, features, labels = data
    n_classes = int(labels.max()) + 1
    center, scale = rescaling_statistics(None, features)
    step = _core.ped_step if implementation == "pedrank" else reference_ped_step
    _run(benchmark, shape_name, step, features, labels, n_classes, center, scale, 0.6, 1.0, 0.1,
         implementation=implementation)


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_ped_loop(benchmark, data, implementation):
    """The whole PED call (every step and the moved features), default options."""
    shape_name, features, labels = data
    _run(benchmark, shape_name, IMPLEMENTATIONS[implementation].ped, features, labels,
         implementation=implementation)


def test_ped_sfda(benchmark, data):
    shape_name, features, labels = data
    _run(benchmark, shape_name, pedrank.score, features, labels, "sfda", ped=True)
