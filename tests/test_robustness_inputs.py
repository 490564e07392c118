"""Every accepted input layout gives the same result; nothing the caller owns is written to;
calls are deterministic and thread-safe.

Tolerances. Validation up-casts float16 to float32 exactly, and every score computes in
float64, so float16/float32 input scores like the float64 array of the same (up-cast) values
to rtol 1e-9 (only the order of float64 sums may differ). PED's moved features keep the
input's precision (float32 stays float32: rounded once, after the last step), so they match
the float64 run of the same values to rtol 1e-5 of the feature scale, and so do PED's
energies and the scores of the moved features (rounding 2^-24 of the features can move a
score by more than that).
"""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

import pedrank
import pedrank.reference as reference
from conftest import make_problem

IMPLEMENTATIONS = {"public": pedrank, "reference": reference}

SCORE_RTOL = 1e-9
PED_FEATURE_RTOL = 1e-5


def _scores(lib, features, labels):
    """Every score (and PED's outcome) on one input, as a dict of arrays."""
    moved = lib.ped(features, labels)
    codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
    return {
        "logme": np.float64(lib.logme(features, labels)),
        "logme_regression": np.float64(
            lib.logme(features, np.stack([codes % 2, codes % 3], 1), regression=True)
        ),
        "sfda": np.float64(lib.sfda(features, labels)),
        "sfda_fixed_shrinkage": np.float64(lib.sfda(features, labels, shrinkage=0.3)),
        "gbc": np.float64(lib.gbc(features, labels)),
        "gbc_diagonal": np.float64(lib.gbc(features, labels, covariance="diagonal", n_components=3)),
        "ped_features": np.asarray(moved.features),
        "ped_energies": np.asarray(moved.energies),
        "score_ped_sfda": np.float64(lib.score(features, labels, "sfda", ped={"radius": 0.3})),
    }


def _assert_close(actual, expected, *, feature_rtol=SCORE_RTOL):
    assert actual.keys() == expected.keys()
    for key in expected:
        rtol = feature_rtol if "ped" in key else SCORE_RTOL
        scale = max(1.0, float(np.abs(expected[key]).max()))
        np.testing.assert_allclose(actual[key], expected[key], rtol=rtol, atol=rtol * scale, err_msg=key)


def _assert_identical(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)
        assert np.asarray(actual[key]).dtype == np.asarray(expected[key]).dtype, key


@pytest.fixture(params=list(IMPLEMENTATIONS), ids=list(IMPLEMENTATIONS))
def lib(request):
    return IMPLEMENTATIONS[request.param]


@pytest.fixture(scope="module")
def problem():
    features, labels = make_problem(48, 6, 4, seed=11, separation=0.8)
    return features, labels


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_input_scores_like_its_float64_upcast(lib, problem, dtype):
    features, labels = problem
    low = features.astype(dtype)
    upcast = low.astype(np.float64)
    _assert_close(_scores(lib, low, labels), _scores(lib, upcast, labels), feature_rtol=PED_FEATURE_RTOL)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_ped_features_are_float64_by_default_and_keep_the_dtype_family_on_request(lib, problem, dtype):
    features, labels = problem
    moved = lib.ped(features.astype(dtype), labels).features
    assert moved.shape == features.shape and moved.dtype == np.float64
    kept = lib.ped(features.astype(dtype), labels, dtype="input").features
    assert kept.shape == features.shape
    assert kept.dtype == (np.float64 if dtype == np.float64 else np.float32)


def test_integer_features_score_like_their_float64_values(lib, problem):
    features, labels = problem
    integers = np.round(features * 10).astype(np.int32)
    _assert_close(_scores(lib, integers, labels), _scores(lib, integers.astype(np.float64), labels))


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda x: np.asfortranarray(x), id="fortran"),
        pytest.param(lambda x: np.repeat(x, 2, axis=1)[:, ::2], id="column-stride"),
        pytest.param(lambda x: np.repeat(x, 3, axis=0)[::3], id="row-stride"),
        pytest.param(lambda x: np.asfortranarray(np.repeat(x, 2, axis=1))[:, 1::2], id="fortran-stride"),
        pytest.param(lambda x: np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)[::2, ::2], id="both-strides"),
        pytest.param(lambda x: x[::-1][::-1], id="negative-stride-view"),
        pytest.param(lambda x: x.T.copy().T, id="transposed-copy"),
        pytest.param(lambda x: x.tolist(), id="nested-list"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts_give_identical_results(lib, problem, layout, dtype):
    features, labels = problem
    contiguous = np.ascontiguousarray(features.astype(dtype))
    arranged = layout(contiguous)
    if not isinstance(arranged, list):
        np.testing.assert_array_equal(arranged, contiguous)
    expected = _scores(lib, contiguous, labels)
    if isinstance(arranged, list):  # a list of Python floats is read as float64
        expected = _scores(lib, contiguous.astype(np.float64), labels)
    _assert_close(_scores(lib, arranged, labels), expected)


def test_a_column_slice_scores_like_its_copy(lib, problem):
    features, labels = problem
    view = features[:, ::2]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    _assert_close(_scores(lib, view, labels), _scores(lib, view.copy(), labels))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memory_mapped_features_give_identical_results(lib, problem, tmp_path, dtype):
    features, labels = problem
    stored = features.astype(dtype)
    path = tmp_path / "features.npy"
    np.save(path, stored)
    mapped = np.load(path, mmap_mode="r")
    assert isinstance(mapped, np.memmap)
    _assert_close(_scores(lib, mapped, labels), _scores(lib, stored, labels))
    np.testing.assert_array_equal(np.load(path), stored)  # the file is untouched


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_caller_arrays_are_never_modified(lib, problem, dtype):
    features, labels = problem
    features = features.astype(dtype)
    string_labels = np.array(["b", "a", "d", "c"])[labels]
    reference_features = features[:10] * 2
    targets = np.stack([labels % 2, labels % 3], 1).astype(np.float64)
    originals = [a.copy() for a in (features, labels, string_labels, reference_features, targets)]

    _scores(lib, features, labels)
    _scores(lib, features, string_labels)
    lib.ped(features, labels, reference=reference_features)
    lib.ped(features, labels, reference=(reference_features.mean(0), reference_features.std(0)))
    lib.logme(features, targets, regression=True)

    for now, before in zip((features, labels, string_labels, reference_features, targets), originals):
        np.testing.assert_array_equal(now, before)
        assert now.dtype == before.dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_read_only_arrays_are_accepted(lib, problem, dtype):
    features, labels = problem
    features = features.astype(dtype)
    expected = _scores(lib, features, labels)
    frozen_features, frozen_labels = features.copy(), labels.copy()
    frozen_features.setflags(write=False)
    frozen_labels.setflags(write=False)
    _assert_identical(_scores(lib, frozen_features, frozen_labels), expected)
    moved = lib.ped(frozen_features, frozen_labels).features
    moved[0, 0] = 1.0  # the result is the caller's to write to
    no_overlap = lib.ped(frozen_features, frozen_labels, radius=0.0).features
    assert no_overlap is not frozen_features
    no_overlap[0, 0] = 1.0


def test_results_are_bitwise_deterministic(lib, problem):
    features, labels = problem
    first = _scores(lib, features, labels)
    for _ in range(2):
        _assert_identical(_scores(lib, features, labels), first)


def test_core_results_are_bitwise_deterministic_over_many_row_blocks():
    # Enough rows and columns that the core splits the samples into at least three row
    # blocks (about 4 MiB of float64 each) spread over its threads: the reduction order
    # must not depend on which thread took which block.
    features, labels = make_problem(3100, 384, 6, seed=12)
    features = features.astype(np.float32)
    runs = [
        (
            pedrank.logme(features, labels),
            pedrank.sfda(features, labels),
            pedrank.gbc(features, labels, n_components=16),
            pedrank.ped(features, labels, max_steps=2).features.tobytes(),
        )
        for _ in range(3)
    ]
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_concurrent_calls_equal_serial_calls(lib):
    problems = [make_problem(40 + 7 * i, 5, 2 + i % 3, seed=100 + i) for i in range(8)]
    serial = [_scores(lib, features, labels) for features, labels in problems]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_scores, lib, features, labels) for features, labels in problems * 2]
        concurrent_results = [future.result() for future in futures]
    for index, result in enumerate(concurrent_results):
        _assert_identical(result, serial[index % len(problems)])


def test_concurrent_calls_on_one_shared_array_equal_serial_calls(lib):
    features, labels = make_problem(300, 20, 5, seed=13)
    serial = _scores(lib, features, labels)
    features.setflags(write=False)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: _scores(lib, features, labels), range(8)))
    for result in results:
        _assert_identical(result, serial)
