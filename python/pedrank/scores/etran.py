"""ETran (Gholami et al., ICCV 2023): energy-based transferability, with an LDA term and a regression term.

Terms, as the authors' metrics.py computes them (mgholamikn/ETran):

- energy: ``logsumexp`` of each sample's feature vector (the features taken as logits), and the mean of the
  lowest 0.5 % of those energies (``Energy_Score(X, 0.5, 'bot')``);
- LDA: the mean probability of the true class, E[p(y | x)] without a log, of their ``LDA`` class. Its
  ``coef_ = means @ V @ V.T`` with V the full orthonormal eigenvector matrix of ``eigh``, i.e. ``V @ V.T = I``:
  the classifier is the nearest class mean, ``softmax(x . mu_c - |mu_c|^2 / 2 + log pi_c)``, whatever the
  shrinkage. pedrank computes that directly from the class means (equal to their number to rounding);
- regression (``regression=True``): their ``PAC_Score(X, y, lda_factor=1)``, minus PACTran-Gaussian with 10
  L-BFGS-B iterations (:func:`pedrank.pactran` with ``max_iter=10``).

The authors' ranking (tw.py) min-max scales the energy and LDA terms over the model pool and adds them with
weights 0.15 and 0.85: :func:`etran_pool`. A single model's :func:`etran` is the unscaled sum of its terms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.special

from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import (
    PedrankValueError,
    check_bool,
    check_classification,
    check_fraction,
    finite_score,
    to_numpy,
)
from pedrank.scores.pactran import one_hot, pac_gauss_bound
from pedrank.scores.registry import ScoreEntry, register

if TYPE_CHECKING:
    from pedrank.workflow.rank import RankTable

__all__ = ["etran", "etran_terms", "etran_pool", "energy_count", "nearest_mean_probabilities"]

#: The authors' pool weights of the scaled energy and LDA terms (tw.py).
POOL_WEIGHTS = (0.15, 0.85)


#: Rows per block of the energy and LDA terms (a 4,096 x D float64 block: 64 MiB at D = 2,048).
_BLOCK_ROWS = 4096


def energy_count(n_samples: int, fraction: float) -> int:
    """How many lowest energies are averaged: ``floor(fraction * N)``, at least 1.

    The authors' ``int(percent * 10) * N // 1000`` (percent = 0.5) is 0 below N = 200, and their mean of no
    energies is NaN; pedrank averages at least one.
    """
    return max(1, int(math.floor(round(fraction * n_samples, 9))))


def nearest_mean_probabilities(features: np.ndarray, means: np.ndarray, priors: np.ndarray, *,
                               log: bool = False) -> np.ndarray:
    """p(c | x) = softmax_c(x . mu_c - |mu_c|^2 / 2 + log pi_c): shape (n_samples, n_classes).

    ``log=True`` gives log p(c | x) by ``log_softmax``: finite where p underflows to 0 (features at a large
    scale make the logits' gaps huge), where the log of the softmax would be -inf.
    """
    logits = features @ means.T - 0.5 * np.einsum("cd,cd->c", means, means) + np.log(priors)
    if log:
        return scipy.special.log_softmax(logits, axis=1)
    return scipy.special.softmax(logits, axis=1)


def check_etran_options(energy_fraction, log, regression):
    fraction = check_fraction(energy_fraction, name="energy_fraction")
    if fraction == 0:
        raise PedrankValueError(f"energy_fraction: expected a number in (0, 1], found {energy_fraction!r}")
    check_bool(log, name="log")
    check_bool(regression, name="regression")
    return fraction


@follows_thread_policy
def etran_terms(features: Any, labels: Any, *, energy_fraction: float = 0.005, log: bool = False,
                regression: bool = False, random_state: int = 0, backend: str = "auto") -> tuple[float, ...]:
    """ETran's raw terms for one model.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
    labels : array_like of shape (n_samples,)
        Any values; mapped to 0..C-1 in sorted order.
    energy_fraction : float, default=0.005
        Fraction of the samples, lowest energy first, whose energies are averaged (authors: 0.5 %).
    log : bool, default=False
        False: LDA term E[p(y | x)] (the authors'); True: E[log p(y | x)].
    regression : bool, default=False
        Also compute the regression term (minus PACTran-Gaussian, 10 iterations, seeded by ``random_state``).
    random_state : int, default=0
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the class means (torch for a tensor); the energies and the class probabilities are then
        computed on the host in float64.

    Returns
    -------
    tuple of float
        ``(energy, lda)`` or ``(energy, lda, regression)``.
    """
    fraction = check_etran_options(energy_fraction, log, regression)
    features, encoded, classes = check_classification(features, labels)
    kernels = select_kernels(features, backend)
    counts, means = kernels.class_means(features, encoded, classes.shape[0])
    host = to_numpy(features)
    n_samples = host.shape[0]
    means64 = np.asarray(to_numpy(means), dtype=np.float64)
    priors = np.asarray(to_numpy(counts), dtype=np.float64) / n_samples
    # Both terms are row-wise: a block of rows at a time in float64, so the peak is a few blocks, not the several
    # N x D float64 temporaries of logsumexp over a float64 copy (4.8 GB at 50,000 x 2,048).
    energies = np.empty(n_samples)
    true = np.empty(n_samples)
    for start in range(0, n_samples, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n_samples)
        block = np.asarray(host[start:stop], dtype=np.float64)
        energies[start:stop] = scipy.special.logsumexp(block, axis=1)
        p = nearest_mean_probabilities(block, means64, priors, log=log)
        true[start:stop] = p[np.arange(stop - start), encoded[start:stop]]
    energies.sort()
    energy = float(energies[:energy_count(n_samples, fraction)].mean())
    lda = float(np.mean(true))  # E[log p(y | x)] with log=True: ``true`` holds the log-probabilities then
    if not regression:
        return energy, lda
    X = np.asarray(host, dtype=np.float64)
    pac = -pac_gauss_bound(X, one_hot(encoded, classes.shape[0]), lda_factor=1.0, variance_factor=100.0,
                           max_iter=10, random_state=random_state)
    return energy, lda, pac


@finite_score("etran")
def etran(features: Any, labels: Any, *, energy_fraction: float = 0.005, log: bool = False, regression: bool = False,
          random_state: int = 0, backend: str = "auto") -> float:
    """ETran for one model: the sum of its raw terms (energy + LDA [+ regression]); see :func:`etran_terms`.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
    labels : array_like of shape (n_samples,)
    energy_fraction, log, regression, random_state, backend
        As :func:`etran_terms`.

    Returns
    -------
    float
        Higher is better. Not the authors' pool number: their ranking min-max scales the energy and LDA terms
        across the models compared and weights them 0.15 / 0.85, so a model's value depends on the pool. Use
        :func:`etran_pool` for that; this single-model sum is dominated by the energy term, whose scale is the
        features' (it grows with the feature magnitude), so compare it only between models of similar scale.
    """
    return float(sum(etran_terms(features, labels, energy_fraction=energy_fraction, log=log,
                                 regression=regression, random_state=random_state, backend=backend)))


def etran_pool(pool: Mapping[str, Any], labels: Any = None, *, weights: Sequence[float] = POOL_WEIGHTS,
               ped: Any = False, backend: str = "auto", references: Mapping[str, Any] | None = None,
               dataset: str | None = None, energy_fraction: float = 0.005, log: bool = False,
               regression: bool = False, random_state: int = 0, errors: str = "raise", progress: bool | None = None,
               metric_name: str | None = None, executor: Any = None) -> RankTable:
    """ETran as its authors rank a pool: each term min-max scaled over the pool, weighted, added.

    Parameters
    ----------
    pool : mapping of str to model features
        As :func:`pedrank.rank` (arrays, ``(features, labels)`` pairs, dicts, paths, FeatureSources).
    labels : array_like of shape (n_samples,), optional
    weights : sequence of float, default=(0.15, 0.85)
        Weights of the scaled energy and LDA terms (and regression term, a third weight, with
        ``regression=True``).
    ped : bool or dict, default=False
        Move each model's features with PED before its terms are computed.
    backend, references, dataset, errors, progress, executor
        As :func:`pedrank.rank` (``errors="row"``: a failing model gets a NaN row, the others are scaled
        without it).
    energy_fraction, log, regression, random_state
        As :func:`etran_terms`.
    metric_name : str, optional
        The name the table carries (``rank`` passes ``"etran:exact"`` for that form); default ``"etran"``.

    Returns
    -------
    pedrank.RankTable
        Best first; scores in [0, sum(weights)]. A term equal for every model (or a pool of one) scales to 0.
    """
    weights = tuple(float(w) for w in weights)
    if len(weights) != (3 if regression else 2):
        raise PedrankValueError(f"weights: expected {3 if regression else 2} numbers (energy, LDA"
                                f"{', regression' if regression else ''}), found {weights!r}")
    from pedrank.workflow.pool import pool_scores

    return pool_scores(pool, labels, metric="etran", terms=etran_terms, weights=weights, ped=ped,
                       backend=backend, references=references, dataset=dataset, energy_fraction=energy_fraction,
                       log=log, regression=regression, random_state=random_state, errors=errors, progress=progress,
                       metric_name=metric_name, executor=executor)


register(ScoreEntry(name="etran", function=etran, reference="pedrank.reference.etran:etran", pool=etran_pool,
                    forms={"exact": {"log": True}}, order=11,
                    scale_range=None))  # the energy term is a log-sum-exp of the raw features
