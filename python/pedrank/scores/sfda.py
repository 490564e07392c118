"""SFDA (Shao et al., ECCV 2022): self-challenging Fisher discriminant analysis."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pedrank._engine.kernels import select_kernels
from pedrank._engine.memory import guard, memory_estimator
from pedrank._engine.validation import (
    DegenerateScoreWarning,
    PedrankValueError,
    check_classification,
    check_features,
    check_fraction,
    finite_score,
    to_numpy,
)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["SFDA", "sfda"]


#: Distance from 1.0 within which an SFDA with a singular within-class scatter counts as degenerate.
DEGENERATE_TOL = 1e-9


def degenerate_message(value, n_samples, n_features, n_classes):
    """Why an SFDA of ``value`` cannot tell models apart, or None: it is 1.0 with a singular within-class scatter.

    With N - C < D the within-class scatter S_w (rank N - C) has null directions in which the class means
    still differ; the shrinkage ``s tr(S_w)/D`` is all that bounds the discriminant there, and the adaptive
    ``s = exp(-5 lambda_max)`` is tiny on features of unit scale, so every sample is classified with
    probability 1 and SFDA is 1.0 for pure noise as for a good model.
    """
    if n_samples - n_classes >= n_features or not value >= 1.0 - DEGENERATE_TOL:
        return None
    return (f"sfda: found N = {n_samples} samples, C = {n_classes} classes and D = {n_features} features (N - C < "
            "D): the within-class scatter is singular, the classes separate along its null directions whatever the "
            f"features encode, and SFDA saturates at {value!r}, its maximum (pure noise of this shape scores 1.0 "
            f"with the adaptive shrinkage), so it cannot tell models apart; give at least D + C = "
            f"{n_features + n_classes} samples, project the features to fewer than N - C = {n_samples - n_classes} "
            "dimensions, or use regularized_h_score")


def warn_if_degenerate(value, n_samples, n_features, n_classes, *, stacklevel=2):
    """:class:`~pedrank.DegenerateScoreWarning` with :func:`degenerate_message`, when there is one."""
    message = degenerate_message(value, n_samples, n_features, n_classes)
    if message is not None:
        warnings.warn(DegenerateScoreWarning(message), stacklevel=stacklevel + 1)


def _check_shrinkage(shrinkage):
    if shrinkage is None:
        return float("nan")  # the kernels' "adaptive" marker
    return check_fraction(shrinkage, name="shrinkage")


@finite_score("sfda")
def sfda(features: Any, labels: Any, *, shrinkage: float | None = None, backend: str = "auto") -> float:
    """SFDA transferability score in (0, 1]: mean p(y_i | x_i) after ConfMix.

    A shrinkage-regularised Fisher discriminant (Gaussian classes sharing the
    within-class scatter ``Sw' = (1-s) Sw + s tr(Sw)/D I``) is fitted; its class
    probabilities are softened by a second softmax (as in the authors' code);
    every sample is then mixed with the mean of the other classes' means in
    proportion to that confidence (ConfMix: hard negatives), the discriminant is
    refitted with the same shrinkage on the mixed features, and the score is the
    mean probability of the true class. The caller's features are not modified
    (the authors' code overwrites them).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
    labels : array_like of shape (n_samples,)
        Class labels, any values.
    shrinkage : float in [0, 1] or None, default None
        None: the authors' adaptive choice ``max(exp(-5 lmax), 1e-10)`` with
        ``lmax`` the largest eigenvalue of Sw from 3 rounds of power iteration.
    backend : {"auto", "numpy", "torch"}

    Returns
    -------
    float

    Notes
    -----
    With N - C < D the within-class scatter is singular and, at the adaptive shrinkage's
    tiny values (features of unit scale or larger), SFDA is 1.0 for any features, pure
    noise included: the value is returned unchanged (the authors' number) with a
    :class:`~pedrank.DegenerateScoreWarning`.
    """
    checked, encoded, classes = check_classification(features, labels)
    kernels = select_kernels(checked, backend)
    guard("sfda", checked, classes.shape[0], backend=backend)
    score, _ = kernels.sfda_score(checked, encoded, classes.shape[0], _check_shrinkage(shrinkage))
    score = float(score)
    n_samples, n_features = checked.shape
    warn_if_degenerate(score, n_samples, n_features, classes.shape[0], stacklevel=3)  # sfda <- finite_score
    return score


def _softmax(scores):
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    return scores / scores.sum(axis=1, keepdims=True)


class SFDA(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Shrinkage Fisher discriminant analysis as a scikit-learn estimator (the model SFDA scores with).

    ``get_params``/``set_params``/``clone`` work; ``predict``, ``predict_proba``, ``decision_function`` and
    ``transform`` raise ``sklearn.exceptions.NotFittedError`` before ``fit``.

    Parameters
    ----------
    shrinkage : float in [0, 1] or None
        See :func:`sfda`.
    backend : {"auto", "numpy", "torch"}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
        Columns of the features seen in ``fit``.
    coef_ : ndarray of shape (n_classes, n_features)
        ``means_ @ inv(Sw')``.
    intercept_ : ndarray of shape (n_classes,)
    means_ : ndarray of shape (n_classes, n_features)
    priors_ : ndarray of shape (n_classes,)
    shrinkage_ : float
        The shrinkage used (the adaptive value when ``shrinkage`` is None).
    within_scatter_, total_scatter_ : ndarray of shape (n_features, n_features)
        Shrunk within-class and total covariance (population normalisation).
    """

    def __init__(self, *, shrinkage=None, backend="auto"):
        self.shrinkage = shrinkage
        self.backend = backend

    def fit(self, X, y):
        """Fit on features X (n_samples, n_features) and labels y (n_samples,); returns self."""
        checked, encoded, classes = check_classification(X, y)
        kernels = select_kernels(checked, self.backend)
        n_classes = classes.shape[0]
        guard("sfda", checked, n_classes, backend=self.backend)
        coef, intercept, shrinkage = kernels.sfda_fit(
            checked, encoded, n_classes, _check_shrinkage(self.shrinkage)
        )
        counts, means = kernels.class_means(checked, encoded, n_classes)
        mean, covariance = kernels.covariance(checked)
        self.classes_ = classes
        self.n_features_in_ = int(checked.shape[1])
        self.coef_, self.intercept_ = np.asarray(coef), np.asarray(intercept)
        self.shrinkage_ = float(shrinkage)
        self.means_ = np.asarray(means)
        self.priors_ = np.asarray(counts) / checked.shape[0]
        covariance = np.asarray(covariance)
        centred_means = self.means_ - np.asarray(mean)
        within = covariance - (centred_means.T * self.priors_) @ centred_means
        n_features = covariance.shape[0]
        s = self.shrinkage_
        identity = np.eye(n_features)
        self.within_scatter_ = (1 - s) * within + s * np.trace(within) / n_features * identity
        self.total_scatter_ = (1 - s) * covariance + s * np.trace(covariance) / n_features * identity
        return self

    def _checked(self, features):
        check_is_fitted(self, "coef_")
        checked = to_numpy(check_features(features, min_samples=1, informative=False))
        if checked.shape[1] != self.coef_.shape[1]:
            raise PedrankValueError(
                f"X has {checked.shape[1]} features, but SFDA is expecting {self.n_features_in_} features as input "
                "(the number of columns it was fitted on)"
            )
        return np.asarray(checked, dtype=np.float64)

    def decision_function(self, features):
        """Discriminant scores, shape (n_samples, n_classes)."""
        return self._checked(features) @ self.coef_.T + self.intercept_

    def predict_proba(self, features):
        """Class probabilities, shape (n_samples, n_classes)."""
        return _softmax(self.decision_function(features))

    def predict(self, features):
        """Most probable label, shape (n_samples,)."""
        scores = self.decision_function(features)
        return self.classes_[np.argmax(scores, axis=1)]

    def transform(self, features):
        """Project on the discriminant directions, shape (n_samples, min(C-1, D)).

        The directions solve ``Sb v = l Sw' v`` (``Sb = St' - Sw'``), sorted by
        decreasing l, normalised so that ``V^T Sw' V = I``. They are solved at each
        call (a D x D generalised eigenproblem) rather than stored, so that ``fit``
        stays as cheap as the score and no call but ``fit`` changes the estimator.
        """
        checked = self._checked(features)
        return checked @ self.scalings()

    def scalings(self):
        """Discriminant directions, shape (n_features, min(C-1, D)); see :meth:`transform`."""
        check_is_fitted(self, "coef_")
        between = self.total_scatter_ - self.within_scatter_
        eigenvalues, eigenvectors = linalg.eigh(between, self.within_scatter_)
        order = np.argsort(eigenvalues)[::-1][: min(self.classes_.shape[0] - 1, self.n_features_in_)]
        return eigenvectors[:, order]


_SFDA_ARGUMENTS = (("X",), ("labels",), ("n_classes",), ("real", "shrinkage", float("nan")))
register(ScoreEntry(
    name="sfda",
    function=sfda,
    reference="pedrank.reference.sfda:sfda",
    kernels={"sfda_fit": _SFDA_ARGUMENTS, "sfda_score": _SFDA_ARGUMENTS},
    memory=memory_estimator("sfda"),
    order=1,
    scale_range=(0.6, math.inf),  # shrinkage exp(-5 lambda_max(S_w)) reads the scatter in the features' units
    degenerate=degenerate_message,
))
