"""pedrank.plot: PNG files that open, with labelled axes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("matplotlib")

import pedrank  # noqa: E402
from pedrank.frontends.plot import plot_ped, plot_scores  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    return width, height


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(80) % 4
    centres = rng.normal(scale=0.7, size=(4, 5))
    return centres[labels] + rng.normal(size=(80, 5)), labels


def test_ped_plot_is_a_png_and_draws_the_run_it_returns(tmp_path):
    features, labels = _problem()
    path = tmp_path / "ped.png"
    result = plot_ped(features, labels, path, radius=0.6)
    width, height = _png_size(path)
    assert width > 400 and height > 200
    expected = pedrank.ped(features, labels, radius=0.6)
    assert result.steps == expected.steps and result.steps > 0
    np.testing.assert_allclose(result.energies, expected.energies)


def test_ped_plot_axes_are_labelled(tmp_path, monkeypatch):
    import matplotlib.figure

    labels_seen = []
    original = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kwargs):
        for axes in self.axes:
            labels_seen.append((axes.get_xlabel(), axes.get_ylabel()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    features, labels = _problem(1)
    plot_ped(features, labels, tmp_path / "p.png")
    plot_scores({"a": 1.0, "b": 2.0, "c": 0.0}, {"a": 1.0, "b": 3.0, "c": 2.0}, tmp_path / "s.png",
                score_label="sfda score", accuracy_label="accuracy (%)")
    assert len(labels_seen) == 3
    assert all(x and y for x, y in labels_seen)
    assert labels_seen[1] == ("PED step (0 = before PED)", "potential energy")
    assert labels_seen[2] == ("sfda score", "accuracy (%)")


def test_score_plot_returns_the_evaluation(tmp_path):
    scores = {"a": 0.3, "b": 0.9, "c": 0.5, "d": 0.1}
    accuracies = {"a": 60.0, "b": 80.0, "c": 70.0, "d": 65.0}
    evaluation = plot_scores(scores, accuracies, tmp_path / "s.png")
    assert _png_size(tmp_path / "s.png")[0] > 300
    expected = stats.weightedtau(list(scores.values()), [accuracies[m] for m in scores])[0]
    assert evaluation.weighted_tau == pytest.approx(expected)


def test_ped_plot_with_a_single_pair_of_classes(tmp_path):
    rng = np.random.default_rng(2)
    labels = np.arange(30) % 2
    features = rng.normal(size=(30, 3)) + labels[:, None] * 0.2
    result = plot_ped(features, labels, tmp_path / "two.png")
    assert _png_size(tmp_path / "two.png")[0] > 0
    assert len(result.energies) == result.steps + 1
