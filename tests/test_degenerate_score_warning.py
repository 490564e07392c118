"""Scores that take one value for any features of a shape say so (pedrank.DegenerateScoreWarning).

The authors' H-score, tr(pinv(cov f) cov E[f | y]), is tr(P G) with P the projection on the centred sample space
and G the class averaging inside it: for features whose centred samples have rank N - 1 (generically whenever
N <= D + 1) it is C - 1 whatever they encode. SFDA is 1.0 whenever its within-class scatter is singular
(N - C < D) and its adaptive shrinkage is tiny (features of unit scale). Both keep returning the authors'
value, with the warning.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import pedrank
from pedrank import DegenerateScoreWarning, reference


def noise_and_informative(n_samples, n_features, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    noise = rng.normal(size=(n_samples, n_features))
    informative = noise + 3.0 * np.eye(n_classes)[labels] @ rng.normal(size=(n_classes, n_features))
    return noise, informative, labels


def degenerate_warnings(function, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = function(*args, **kwargs)
    return value, [w for w in caught if issubclass(w.category, DegenerateScoreWarning)]


def test_the_warning_is_public():
    assert "DegenerateScoreWarning" in pedrank.__all__
    assert issubclass(DegenerateScoreWarning, UserWarning)


# --- H-score ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_samples", "n_features"), [(60, 64), (60, 59), (61, 60), (40, 300)])
def test_h_score_is_classes_minus_one_for_noise_with_few_samples_and_warns(n_samples, n_features):
    noise, informative, labels = noise_and_informative(n_samples, n_features, 4)
    for features in (noise, informative):
        with pytest.warns(DegenerateScoreWarning, match=(
                rf"h_score: found N = {n_samples} samples <= D \+ 1 = {n_features + 1} \(D = {n_features} "
                r"features\): the authors' H-score is C - 1 = 3 for any features of full rank .* use "
                r"regularized_h_score")):
            value = pedrank.h_score(features, labels)
        assert value == pytest.approx(3.0, rel=1e-9)  # the authors' value, unchanged


def test_h_score_value_is_unchanged_by_the_warning():
    noise, _, labels = noise_and_informative(60, 64, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateScoreWarning)
        value = pedrank.h_score(noise, labels)
    np.testing.assert_allclose(value, reference.h_score(noise, labels), rtol=1e-9)


def test_regularized_h_score_tells_them_apart_and_does_not_warn():
    noise, informative, labels = noise_and_informative(60, 64, 4)
    low, caught_low = degenerate_warnings(pedrank.regularized_h_score, noise, labels)
    high, caught_high = degenerate_warnings(pedrank.regularized_h_score, informative, labels)
    assert low < 1.0 < high
    assert caught_low == caught_high == []


@pytest.mark.parametrize(("n_samples", "n_features"), [(62, 60), (200, 64)])
def test_h_score_does_not_warn_with_more_samples_than_dimensions_plus_one(n_samples, n_features):
    noise, informative, labels = noise_and_informative(n_samples, n_features, 4)
    for features in (noise, informative):
        _, caught = degenerate_warnings(pedrank.h_score, features, labels)
        assert caught == []
    assert pedrank.h_score(noise, labels) < pedrank.h_score(informative, labels)


def test_h_score_does_not_warn_below_full_rank_when_the_value_is_not_classes_minus_one():
    # N <= D + 1 but the features span only 5 dimensions: H-score is an ordinary value there.
    rng = np.random.default_rng(4)
    labels = np.arange(40) % 4
    features = rng.normal(size=(40, 5)) @ rng.normal(size=(5, 80))
    value, caught = degenerate_warnings(pedrank.h_score, features, labels)
    assert value < 2.9 and caught == []


def test_h_score_on_torch_warns_alike():
    torch = pytest.importorskip("torch")
    noise, _, labels = noise_and_informative(60, 64, 4)
    with pytest.warns(DegenerateScoreWarning, match="h_score: found N = 60 samples"):
        pedrank.h_score(torch.as_tensor(noise), labels)


def test_h_score_warning_points_at_the_caller():
    noise, _, labels = noise_and_informative(60, 64, 4)
    _, caught = degenerate_warnings(pedrank.h_score, noise, labels)
    assert len(caught) == 1 and caught[0].filename == __file__


# --- SFDA -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_samples", "n_features", "n_classes"), [(60, 64, 4), (35, 32, 4), (33, 32, 2)])
def test_sfda_is_one_for_noise_with_a_singular_within_class_scatter_and_warns(n_samples, n_features, n_classes):
    noise, informative, labels = noise_and_informative(n_samples, n_features, n_classes)
    for features in (noise, informative):
        with pytest.warns(DegenerateScoreWarning, match=(
                rf"sfda: found N = {n_samples} samples, C = {n_classes} classes and D = {n_features} features "
                rf"\(N - C < D\): the within-class scatter is singular.*give at least D \+ C = "
                rf"{n_features + n_classes} samples")):
            value = pedrank.sfda(features, labels)
        assert value == 1.0
    np.testing.assert_allclose(reference.sfda(noise, labels), 1.0, rtol=1e-12)  # the authors' value


@pytest.mark.parametrize(("n_samples", "n_features"), [(68, 64), (200, 64)])
def test_sfda_does_not_warn_with_a_full_rank_within_class_scatter(n_samples, n_features):
    noise, informative, labels = noise_and_informative(n_samples, n_features, 4)
    for features in (noise, informative):
        _, caught = degenerate_warnings(pedrank.sfda, features, labels)
        assert caught == []


def test_sfda_does_not_warn_when_its_shrinkage_keeps_the_score_below_one():
    # Small features: the adaptive shrinkage exp(-5 lambda_max) is near 1 and bounds the null directions.
    noise, _, labels = noise_and_informative(60, 64, 4)
    value, caught = degenerate_warnings(pedrank.sfda, 0.1 * noise, labels)
    assert value < 0.99 and caught == []


# --- through rank and the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["h_score", "sfda"])
def test_rank_lets_the_warning_through(metric):
    noise, informative, labels = noise_and_informative(60, 64, 4)
    with pytest.warns(DegenerateScoreWarning, match=f"{metric}: found N = 60 samples"):
        pedrank.rank({"noise": noise, "informative": informative}, labels, metric=metric)


@pytest.mark.parametrize("options", [{}, {"confidence": 2}])
@pytest.mark.parametrize("metric", ["h_score", "sfda"])
def test_rank_on_other_processes_names_each_degenerate_model(metric, options):
    # A score's own warning stays in the worker process: rank decides it again from the value and the shape.
    from concurrent.futures import ProcessPoolExecutor

    noise, informative, labels = noise_and_informative(60, 64, 4)
    with ProcessPoolExecutor(2) as executor:
        _, caught = degenerate_warnings(pedrank.rank, {"noise": noise, "informative": informative}, labels,
                                        metric=metric, executor=executor, progress=False, **options)
    assert sorted(str(w.message).split(":")[0] for w in caught) == ["model 'informative'", "model 'noise'"]
    assert all(f"{metric}: found N = 60 samples" in str(w.message) for w in caught)
    assert all(w.filename == __file__ for w in caught)


def test_rank_on_other_processes_says_nothing_of_a_sound_score():
    from concurrent.futures import ProcessPoolExecutor

    _, informative, labels = noise_and_informative(200, 8, 4)
    with ProcessPoolExecutor(2) as executor:
        _, caught = degenerate_warnings(pedrank.rank, {"a": informative, "b": informative[:, ::-1].copy()}, labels,
                                        metric="h_score", executor=executor, progress=False)
    assert caught == []


def test_the_command_line_shows_the_warning(tmp_path):
    noise, informative, labels = noise_and_informative(60, 64, 4)
    np.savez(tmp_path / "noise.npz", features=noise, labels=labels)
    np.savez(tmp_path / "informative.npz", features=informative, labels=labels)
    run = subprocess.run([sys.executable, "-m", "pedrank", "rank", str(tmp_path / "noise.npz"),
                          str(tmp_path / "informative.npz"), "--metric", "h_score"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "pedrank rank: warning (DegenerateScoreWarning): h_score: found N = 60 samples" in run.stderr
