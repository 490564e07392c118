"""``pedrank demo``: a small, real model-selection problem that needs no download.

The target task is scikit-learn's handwritten digits (1,797 8x8 images, 10 classes), split once into a
stratified half for scoring/training and a half for testing. The "pre-trained models" are a dozen genuinely
different feature extractors: raw and binarised pixels, PCA of three sizes, block-downsampled images, row and
column ink profiles, a gradient-orientation histogram (HOG-like), random ReLU projections of two widths, random
Fourier features of an RBF kernel, and the hidden layer of two small MLPs trained on *other* tasks (even vs odd,
and the digits 0-4 only). Every extractor is fitted on the first half's images only, never on their labels
(except the two MLPs, which see a different task's labels).

Ground truth is what a user would measure the expensive way: a logistic-regression probe trained on each
model's features of the first half and its accuracy on the second half. The scores see only the first half's
features and labels. The demo prints the ranking each score gives, with and without PED, and the weighted
Kendall tau of each against the probe's accuracies, and writes the plots.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, Union

import numpy as np

from pedrank._engine.progress import progress as _progress
from pedrank._engine.validation import PedrankValueError

__all__ = ["MODELS", "DemoResult", "digits_model_pool", "probe_accuracy", "run_demo"]

PathLike = Union[str, "os.PathLike[str]"]

Extractor = Callable[[np.ndarray], np.ndarray]

#: The demo's "pre-trained models": the feature extractors of :func:`digits_model_pool`.
MODELS = (
    "pixels", "binary-pixels", "pca-4", "pca-12", "pca-32", "downsample-4x4", "ink-profiles", "gradient-hist",
    "random-relu-24", "random-relu-512", "rbf-fourier-512", "mlp-even-odd", "mlp-digits-0-4",
)


def _fit_pca(train: np.ndarray, n_components: int) -> Extractor:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, random_state=0).fit(train)
    return pca.transform


def _downsample(images: np.ndarray) -> np.ndarray:
    grid = images.reshape(-1, 4, 2, 4, 2)
    return grid.mean(axis=(2, 4)).reshape(len(images), 16)


def _profiles(images: np.ndarray) -> np.ndarray:
    grid = images.reshape(-1, 8, 8)
    return np.concatenate([grid.sum(axis=1), grid.sum(axis=2)], axis=1)


def _gradient_histograms(images: np.ndarray, bins: int = 8, cells: int = 2) -> np.ndarray:
    """Magnitude-weighted gradient orientations per cell: a HOG without block normalisation."""
    grid = images.reshape(-1, 8, 8)
    gy, gx = np.gradient(grid, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned, as in HOG
    bin_index = np.minimum((orientation / np.pi * bins).astype(int), bins - 1)
    size = 8 // cells
    out = np.zeros((len(images), cells, cells, bins))
    for row in range(cells):
        for col in range(cells):
            window = (slice(None), slice(row * size, (row + 1) * size), slice(col * size, (col + 1) * size))
            b = bin_index[window].reshape(len(images), -1)
            m = magnitude[window].reshape(len(images), -1)
            for k in range(bins):
                out[:, row, col, k] = np.where(b == k, m, 0.0).sum(axis=1)
    return out.reshape(len(images), -1)


def _random_relu(width: int, seed: int) -> Extractor:
    rng = np.random.default_rng(seed)
    weights = rng.normal(scale=1.0 / 8.0, size=(64, width))
    bias = rng.normal(scale=0.5, size=width)
    return lambda images: np.maximum((images / 16.0) @ weights + bias, 0.0)


def _random_fourier(train: np.ndarray, n_components: int) -> Extractor:
    from sklearn.kernel_approximation import RBFSampler

    sampler = RBFSampler(gamma=0.02 / 16.0, n_components=n_components, random_state=0).fit(train)
    return sampler.transform


def _mlp_hidden(train: np.ndarray, source_labels: np.ndarray, mask: np.ndarray, width: int) -> Extractor:
    """Hidden ReLU layer of a small MLP trained on a different (source) task."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=(width,), max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(train[mask] / 16.0, source_labels[mask])
    weights, bias = mlp.coefs_[0], mlp.intercepts_[0]
    return lambda images: np.maximum((images / 16.0) @ weights + bias, 0.0)


def digits_model_pool(random_state: int = 0, models: Iterable[str] | None = None):
    """The demo's pool: features of each extractor on the two halves of the digits.

    Parameters
    ----------
    random_state : int, default 0
        Seed of the stratified split.
    models : iterable of str, optional
        Build only these extractors (default: all of :data:`MODELS`).

    Returns
    -------
    train : dict of str to ndarray of shape (n_train, n_features)
        Each model's features of the scoring/training half.
    y_train : ndarray of shape (n_train,)
    test : dict of str to ndarray of shape (n_test, n_features)
    y_test : ndarray of shape (n_test,)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.5, stratify=labels, random_state=random_state
    )
    everything = np.ones(len(x_train), dtype=bool)
    # Factories, so that a subset of the pool fits only what it needs.
    factories: dict[str, Callable[[], Extractor]] = {
        "pixels": lambda: (lambda x: x),
        "binary-pixels": lambda: (lambda x: (x > 8).astype(float)),
        "pca-4": lambda: _fit_pca(x_train, 4),
        "pca-12": lambda: _fit_pca(x_train, 12),
        "pca-32": lambda: _fit_pca(x_train, 32),
        "downsample-4x4": lambda: _downsample,
        "ink-profiles": lambda: _profiles,
        "gradient-hist": lambda: _gradient_histograms,
        "random-relu-24": lambda: _random_relu(24, seed=1),
        "random-relu-512": lambda: _random_relu(512, seed=2),
        "rbf-fourier-512": lambda: _random_fourier(x_train, 512),
        "mlp-even-odd": lambda: _mlp_hidden(x_train, y_train % 2, everything, 64),
        "mlp-digits-0-4": lambda: _mlp_hidden(x_train, y_train, y_train < 5, 64),
    }
    assert tuple(factories) == MODELS
    names = list(MODELS) if models is None else list(models)
    unknown = [name for name in names if name not in factories]
    if unknown or len(names) < 2:
        raise PedrankValueError(f"models: expected at least 2 of {list(MODELS)}, found {names}")
    extractors = {name: factories[name]() for name in names}
    train = {name: np.ascontiguousarray(f(x_train), dtype=np.float64) for name, f in extractors.items()}
    test = {name: np.ascontiguousarray(f(x_test), dtype=np.float64) for name, f in extractors.items()}
    return train, y_train, test, y_test


def probe_accuracy(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy (%) of a logistic-regression probe on standardised features: the demo's ground truth."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pedrank._engine.config import blas_on_policy

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=300))
    # the library's thread policy for the probe's small products too: OpenBLAS on every core made this probe
    # 8-10x slower on a loaded two-core machine (the docs gallery measured 0.1-0.2 s of CPU on one thread, 0.9-8.8 s
    # on all)
    with warnings.catch_warnings(), blas_on_policy(train.shape[0], train.shape[1]):
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train, y_train)
        return 100.0 * float(probe.score(test, y_test))


@dataclass
class DemoResult:
    """What the demo computed.

    Attributes
    ----------
    accuracies : dict of str to float
        Ground truth: the probe's test accuracy (%) per model.
    tables : dict of (str, bool) to RankTable
        The ranking of each (metric, with PED).
    weighted_tau : dict of (str, bool) to float
        Weighted tau of each ranking against ``accuracies``.
    plots : list of pathlib.Path
    seconds : float
    """

    accuracies: dict
    tables: dict = field(default_factory=dict)
    weighted_tau: dict = field(default_factory=dict)
    plots: list = field(default_factory=list)
    seconds: float = 0.0


def _accuracy_table(accuracies: dict[str, float], dims: dict[str, int]) -> str:
    order = sorted(accuracies, key=lambda m: -accuracies[m])
    width = max(len(m) for m in order)
    lines = [f"{'model'.ljust(width)}  features  probe accuracy (%)"]
    lines += [f"{m.ljust(width)}  {dims[m]:>8}  {accuracies[m]:>18.2f}" for m in order]
    return "\n".join(lines)


def run_demo(
    output_dir: PathLike | None = "pedrank-demo",
    *,
    metric: str | None = None,
    metrics: Iterable[str] = ("logme", "sfda", "gbc"),
    ped: Any = True,
    plots: bool = True,
    models: Iterable[str] | None = None,
    progress: bool | None = None,
    out: TextIO | None = None,
) -> DemoResult:
    """Run the digits model-selection demo, print its report to ``out`` and write plots to ``output_dir``.

    Parameters
    ----------
    output_dir : path or None, default "pedrank-demo"
        Where the PNGs go (created). None or ``plots=False``: no plots.
    metric : str, optional
        The metric whose full ranked tables (without and with PED) are printed; a name of
        :data:`pedrank.METRICS` or a named form (``logme:exact``). Default: the recommended score
        (``pedrank rank``'s default, :data:`pedrank.workflow.recommendation.RECOMMENDED`).
    metrics : iterable of str
        Metrics in the summary of weighted taus (``metric`` and the recommended score are always included; the
        summary marks the recommended default).
    ped : True or dict
        PED options.
    plots : bool, default True
    models : iterable of str, optional
        A subset of :data:`MODELS` (default: all).
    progress : bool or None
    out : text stream, default sys.stdout
    """
    import pedrank
    from pedrank.workflow.evaluate import evaluate
    from pedrank.workflow.rank import rank

    out = sys.stdout if out is None else out
    start = time.perf_counter()
    from pedrank.scores.registry import resolve_metric
    from pedrank.workflow.recommendation import RECOMMENDED

    metric = RECOMMENDED.metric if metric is None else metric
    metric_list = [metric] + [m for m in metrics if m != metric]
    if RECOMMENDED.metric not in metric_list:
        metric_list.append(RECOMMENDED.metric)
    unknown = []
    for name in metric_list:
        try:
            resolve_metric(name)
        except PedrankValueError:
            unknown.append(name)
    if unknown:
        raise PedrankValueError(f"metric: unknown {unknown}; expected some of {list(pedrank.METRICS)} or a named "
                                "form such as logme:exact")
    ped_options = {} if ped is True else dict(ped)

    train, y_train, test, y_test = digits_model_pool(models=models)
    accuracies = {
        name: probe_accuracy(train[name], y_train, test[name], y_test)
        for name in _progress(list(train), desc="probes", enabled=progress)
    }
    result = DemoResult(accuracies)
    print(
        f"Target task: scikit-learn digits, {len(y_train)} images to score and train on, {len(y_test)} to test; "
        f"{len(np.unique(y_train))} classes.",
        file=out,
    )
    print("Ground truth: logistic-regression probe on each model's standardised features.\n", file=out)
    print(_accuracy_table(accuracies, {m: f.shape[1] for m, f in train.items()}), file=out)

    for name in metric_list:
        for with_ped in (False, True):
            table = rank(train, y_train, metric=name, ped=ped_options if with_ped else False,
                         dataset="digits", progress=progress)
            result.tables[(name, with_ped)] = table
            result.weighted_tau[(name, with_ped)] = evaluate(table, accuracies).weighted_tau
            if name == metric:
                print("", file=out)
                print(table.to_string(), file=out)
                tau = result.weighted_tau[(name, with_ped)]
                print(f"weighted tau against the probe accuracies: {tau:.3f}", file=out)

    print("\nWeighted Kendall tau of each score's ranking against the probe accuracies", file=out)
    width = max(len(m) for m in metric_list)
    print(f"{'metric'.ljust(width)}  without PED  with PED", file=out)
    for name in metric_list:
        plain, moved = result.weighted_tau[(name, False)], result.weighted_tau[(name, True)]
        mark = ""
        if name == RECOMMENDED.metric:
            mark = f"  <- recommended default ({'with' if RECOMMENDED.ped else 'without'} PED)"
        print(f"{name.ljust(width)}  {plain:>11.3f}  {moved:>8.3f}{mark}", file=out)
    print(f"The recommended default, {RECOMMENDED.describe()} (what `pedrank rank` runs without --metric), rests on "
          "the zoo's fine-tuned and probe evidence (README, 'Which score should I use?'); on this small probe "
          "task it scores "
          f"{result.weighted_tau[(RECOMMENDED.metric, RECOMMENDED.ped)]:.3f}.", file=out)

    if plots and output_dir is not None:
        from pedrank.frontends.plot import plot_ped, plot_scores

        directory = Path(output_dir)
        directory.mkdir(parents=True, exist_ok=True)
        best = result.tables[(metric, True)].models[0]
        ped_path = directory / f"ped_{best}.png"
        plot_ped(train[best], y_train, ped_path, title=f"PED on digits, model {best}", **ped_options)
        result.plots.append(ped_path)
        for with_ped in (False, True):
            suffix = "_ped" if with_ped else ""
            path = directory / f"scores_{metric.replace(':', '-')}{suffix}.png"  # a form's ':' is no file name
            plot_scores(
                result.tables[(metric, with_ped)],
                accuracies,
                path,
                score_label=f"{metric} score" + (" after PED" if with_ped else ""),
                accuracy_label="probe accuracy on digits (%)",
                title=metric + ("+PED" if with_ped else ""),
            )
            result.plots.append(path)
        print("\nPlots: " + ", ".join(str(p) for p in result.plots), file=out)
    result.seconds = time.perf_counter() - start
    print(f"Done in {result.seconds:.1f} s.", file=out)
    return result
