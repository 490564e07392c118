"""Reference ETran (Gholami et al., ICCV 2023): a port of the authors' metrics.py (mgholamikn/ETran):
``Energy_Score`` and the ``LDA`` class of ``LDA_Score`` step by step (adaptive shrinkage by 3 power rounds,
``eigh`` of ``inv(Sw) @ Sb``, ``coef_ = means @ V @ V.T``), and ``PAC_Score`` for the regression term."""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from pedrank._engine.validation import check_classification
from pedrank.reference.pactran import pac_gauss
from pedrank.scores.etran import check_etran_options


def _energy_count(n_samples, fraction):
    """How many of the lowest energies are averaged: floor(fraction * N), at least 1.

    The authors' ``int(percent * 10) * N // 1000`` (percent = 0.5) is 0 below N = 200, and their mean of no
    energies is NaN; pedrank averages at least one. The product is rounded to 9 decimals first, so that a
    decimal fraction such as 0.29 * 100 = 28.999999999999996 counts 29, not 28.
    """
    return max(1, math.floor(round(fraction * n_samples, 9)))


def _cov(X, shrinkage=-1):
    emp_cov = np.cov(np.asarray(X).T, bias=True)
    if shrinkage < 0:
        return emp_cov
    n_features = emp_cov.shape[0]
    mu = np.trace(emp_cov) / n_features
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk.flat[:: n_features + 1] += shrinkage * mu
    return shrunk


def _iterative_a(A, max_iterations=3):
    x = A.sum(axis=1)
    for _ in range(max_iterations):
        temp = A @ x
        y = temp / np.linalg.norm(temp, 2)
        temp = A @ y
        x = temp / np.linalg.norm(temp, 2)
    return (x.T @ A) @ y


def _lda_probabilities(X, y, log=False):
    classes, y = np.unique(y, return_inverse=True)
    priors = np.bincount(y) / float(len(y))
    means = np.zeros((len(classes), X.shape[1]))
    np.add.at(means, y, X)
    means /= np.bincount(y)[:, None]
    Sw = np.zeros((X.shape[1], X.shape[1]))
    for idx in range(len(classes)):
        Sw += priors[idx] * np.atleast_2d(_cov(X[y == idx, :]))
    shrinkage = max(np.exp(-5 * _iterative_a(Sw, 3)), 1e-10)
    St = _cov(X, shrinkage=shrinkage)
    n_features = Sw.shape[0]
    mu = np.trace(Sw) / n_features
    shrunk_Sw = (1.0 - shrinkage) * Sw
    shrunk_Sw.flat[:: n_features + 1] += shrinkage * mu
    Sb = St - shrunk_Sw
    evals, evecs = np.linalg.eigh(np.linalg.inv(shrunk_Sw) @ Sb)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    if log:  # log p by log_softmax: the log of an underflowed softmax would be -inf
        return scipy.special.log_softmax(X @ coef.T + intercept, axis=1)
    return scipy.special.softmax(X @ coef.T + intercept, axis=1)


def etran_terms(features, labels, *, energy_fraction=0.005, log=False, regression=False, random_state=0):
    """Reference ETran terms. See :func:`pedrank.etran_terms`."""
    fraction = check_etran_options(energy_fraction, log, regression)
    features, encoded, _ = check_classification(features, labels)
    X = np.array(features, dtype=np.float64)
    n = X.shape[0]
    energy_score = scipy.special.logsumexp(X, axis=-1)
    energy = float(energy_score[np.argsort(energy_score)[:_energy_count(n, fraction)]].mean())
    prob = _lda_probabilities(X, encoded, log=log)
    true = prob[np.arange(n), encoded]
    lda = float(np.mean(true) if log else np.sum(true) / n)
    if not regression:
        return energy, lda
    return energy, lda, float(-pac_gauss(X, encoded, 1.0, 100.0, 10, random_state))


def etran(features, labels, *, energy_fraction=0.005, log=False, regression=False, random_state=0):
    """Reference ETran. See :func:`pedrank.etran`."""
    return float(sum(etran_terms(features, labels, energy_fraction=energy_fraction, log=log,
                                 regression=regression, random_state=random_state)))
