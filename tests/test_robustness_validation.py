"""Bad input is refused with a ValueError that says what was wrong, through every public entry
point and through pedrank.reference (which shares the validation); any label values work."""

from __future__ import annotations

import numpy as np
import pytest

import pedrank
import pedrank.reference as reference
from conftest import make_problem

IMPLEMENTATIONS = {"public": pedrank, "reference": reference}


def _run_logme(lib, features, labels):
    return lib.logme(features, labels)


def _run_sfda(lib, features, labels):
    return lib.sfda(features, labels)


def _run_gbc(lib, features, labels):
    return lib.gbc(features, labels)


def _run_gbc_diagonal(lib, features, labels):
    return lib.gbc(features, labels, covariance="diagonal")


def _run_ped(lib, features, labels):
    return lib.ped(features, labels).features


def _run_score_after_ped(lib, features, labels):
    return lib.score(features, labels, "logme", ped=True)


#: Every entry point a user reaches: each returns a float or the moved features.
SCORES = {
    "logme": _run_logme,
    "sfda": _run_sfda,
    "gbc": _run_gbc,
    "gbc_diagonal": _run_gbc_diagonal,
    "ped": _run_ped,
    "score_ped_logme": _run_score_after_ped,
}


@pytest.fixture(params=list(IMPLEMENTATIONS), ids=list(IMPLEMENTATIONS))
def lib(request):
    return IMPLEMENTATIONS[request.param]


@pytest.fixture(params=list(SCORES), ids=list(SCORES))
def run(request):
    return SCORES[request.param]


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_features_name_the_count_and_first_row(lib, run, bad_value):
    features, labels = make_problem(30, 4, 3, seed=1)
    features[5, 2] = bad_value
    features[7, 0] = bad_value
    features[7, 3] = bad_value
    with pytest.raises(ValueError, match=r"features") as error:
        run(lib, features, labels)
    message = str(error.value)
    assert "3 non-finite" in message
    assert "row 5" in message


def test_non_finite_float32_features_are_refused(lib, run):
    features, labels = make_problem(30, 4, 3, seed=1, dtype=np.float32)
    features[11, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite.*row 11"):
        run(lib, features, labels)


def test_features_that_overflow_float16_to_inf_are_refused(lib, run):
    features, labels = make_problem(30, 4, 3, seed=1)
    features[3, 0] = 1e5  # beyond float16's largest finite value, 65504
    with np.errstate(over="ignore"):
        features = features.astype(np.float16)
    with pytest.raises(ValueError, match=r"1 non-finite.*row 3"):
        run(lib, features, labels)


@pytest.mark.parametrize("shape", [(30,), (30, 4, 2), ()])
def test_features_must_be_two_dimensional(lib, run, shape):
    features = np.ones(shape)
    labels = np.arange(30) % 3
    with pytest.raises(ValueError, match=r"features: expected a 2-D array") as error:
        run(lib, features, labels)
    assert f"{len(shape)} dimension" in str(error.value)


@pytest.mark.parametrize("dtype", [np.complex128, object, "U3"])
def test_features_must_be_real_numbers(lib, run, dtype):
    features, labels = make_problem(30, 4, 3, seed=1)
    with pytest.raises(ValueError, match=r"features"):
        run(lib, features.astype(dtype), labels)


def test_ragged_features_are_refused(lib, run):
    with pytest.raises(ValueError, match=r"features"):
        run(lib, [[1.0, 2.0], [3.0]], [0, 1])


def test_zero_feature_columns_are_refused(lib, run):
    with pytest.raises(ValueError, match=r"0 feature columns"):
        run(lib, np.ones((10, 0)), np.arange(10) % 2)


@pytest.mark.parametrize("n_samples", [0, 1])
def test_fewer_than_two_samples_are_refused(lib, run, n_samples):
    features = np.ones((n_samples, 3))
    labels = np.arange(n_samples)
    with pytest.raises(ValueError, match=rf"found {n_samples} sample.*at least 2"):
        run(lib, features, labels)


def test_a_single_class_is_refused_with_a_message_saying_so(lib, run):
    features, _ = make_problem(20, 3, 2, seed=2)
    labels = np.full(20, "cat")
    with pytest.raises(ValueError, match=r"labels: found 1 distinct class.*'cat'.*at least 2 classes"):
        run(lib, features, labels)


def test_label_count_must_match_the_rows(lib, run):
    features, labels = make_problem(20, 3, 2, seed=2)
    with pytest.raises(ValueError, match=r"labels: found 19 labels but the features have 20 rows"):
        run(lib, features, labels[:19])


@pytest.mark.parametrize("shape", [(20, 1), (20, 2), (4, 5)])
def test_labels_must_be_one_dimensional(lib, run, shape):
    features, _ = make_problem(20, 3, 2, seed=2)
    labels = np.arange(np.prod(shape)).reshape(shape) % 2
    with pytest.raises(ValueError, match=r"labels: .*1-D"):
        run(lib, features, labels)


def test_nan_labels_are_refused(lib, run):
    features, labels = make_problem(20, 3, 2, seed=2)
    labels = labels.astype(float)
    labels[4] = np.nan
    with pytest.raises(ValueError, match=r"labels: found 1 NaN"):
        run(lib, features, labels)


def test_mixed_type_labels_are_refused(lib, run):
    features, _ = make_problem(6, 3, 2, seed=2)
    labels = np.array([1, "a", 2, "b", 1, "a"], dtype=object)
    with pytest.raises(ValueError, match=r"labels: label values could not be sorted"):
        run(lib, features, labels)


def _relabel(labels):
    return np.unique(labels, return_inverse=True)[1].reshape(-1)


def _assert_same(first, second):
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


@pytest.mark.parametrize(
    "make_labels",
    [
        pytest.param(lambda codes: np.array(["zebra", "ant", "mole", "bee"])[codes], id="strings"),
        pytest.param(lambda codes: codes * 7 - 10, id="negative-gapped-ints"),
        pytest.param(lambda codes: (codes + 1) * 1000.0, id="floats"),
        pytest.param(lambda codes: np.repeat(codes * 3 + 1, 2)[::2], id="non-contiguous"),
        pytest.param(lambda codes: list(np.array(["b", "a", "d", "c"])[codes]), id="python-list"),
        pytest.param(lambda codes: (codes + 5).astype(np.uint8), id="uint8"),
    ],
)
def test_any_label_values_give_the_score_of_their_sorted_relabelling(lib, run, make_labels):
    features, codes = make_problem(40, 5, 4, seed=3)
    labels = make_labels(codes)
    _assert_same(run(lib, features, labels), run(lib, features, _relabel(np.asarray(labels))))


def test_boolean_labels_are_two_classes(lib, run):
    features, codes = make_problem(30, 4, 2, seed=4)
    _assert_same(run(lib, features, codes.astype(bool)), run(lib, features, codes))


def test_option_errors_name_the_option(lib):
    features, labels = make_problem(30, 4, 3, seed=1)
    with pytest.raises(ValueError, match=r"shrinkage"):
        lib.sfda(features, labels, shrinkage=1.5)
    with pytest.raises(ValueError, match=r"shrinkage"):
        lib.sfda(features, labels, shrinkage=float("nan"))
    with pytest.raises(ValueError, match=r"n_components"):
        lib.gbc(features, labels, n_components=0)
    with pytest.raises(ValueError, match=r"covariance"):
        lib.gbc(features, labels, covariance="full")
    with pytest.raises(ValueError, match=r"radius"):
        lib.ped(features, labels, radius=float("nan"))
    with pytest.raises(ValueError, match=r"max_steps"):
        lib.ped(features, labels, max_steps=-1)
    with pytest.raises(ValueError, match=r"exit_ratio"):
        lib.ped(features, labels, exit_ratio=2.0)
    with pytest.raises(ValueError, match=r"metric"):
        lib.score(features, labels, "accuracy")
    with pytest.raises(ValueError, match=r"ped: unknown option"):
        lib.score(features, labels, "logme", ped={"radious": 0.3})


def test_ped_reference_statistics_are_validated(lib):
    features, labels = make_problem(30, 4, 3, seed=1)
    with pytest.raises(ValueError, match=r"reference mean: expected shape \(4,\)"):
        lib.ped(features, labels, reference=(np.zeros(3), np.ones(4)))
    with pytest.raises(ValueError, match=r"reference std: found 1 negative"):
        lib.ped(features, labels, reference=(np.zeros(4), np.array([1.0, -1.0, 1.0, 1.0])))
    bad_reference = np.ones((10, 4))
    bad_reference[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"reference: found 1 non-finite.*row 2"):
        lib.ped(features, labels, reference=bad_reference)
    with pytest.raises(ValueError, match=r"reference: found 5 feature columns"):
        lib.ped(features, labels, reference=np.ones((10, 5)))


def test_regression_targets_are_validated(lib):
    features, _ = make_problem(30, 4, 3, seed=1)
    targets = np.ones((30, 2))
    targets[6, 1] = np.inf
    with pytest.raises(ValueError, match=r"labels: found 1 non-finite target.*row 6"):
        lib.logme(features, targets, regression=True)
    with pytest.raises(ValueError, match=r"labels: expected regression targets of shape \(30,\)"):
        lib.logme(features, np.ones((29, 2)), regression=True)
    with pytest.raises(ValueError, match=r"labels: regression targets must be numeric"):
        lib.logme(features, np.array(["a"] * 30), regression=True)
