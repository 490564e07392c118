"""LogME (You et al., ICML 2021): Bayesian evidence of a linear model on the features."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pedrank._engine.backend import to_numpy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.memory import guard, memory_estimator
from pedrank._engine.validation import (
    PedrankValueError,
    check_bool,
    check_classification,
    check_features,
    check_finite_score,
    check_targets,
    finite_score,
)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["LogME", "logme"]

LOGME_DEGENERATE = (
    "every singular value of the features is at most 1e-10 (all-zero features, or features "
    "scaled below about 1e-10), so the evidence is degenerate; rescale the features "
    "(e.g. standardise them)"
)


def _fit(features, labels, regression, exact_dimension, backend):
    regression = check_bool(regression, name="regression")
    exact_dimension = check_bool(exact_dimension, name="exact_dimension")
    if regression:
        checked = check_features(features)
        targets = check_targets(labels, checked.shape[0])
        encoded, classes, n_targets = None, None, targets.shape[1]
    else:
        checked, encoded, classes = check_classification(features, labels)
        targets, n_targets = None, classes.shape[0]
    kernels = select_kernels(checked, backend)
    guard("logme", checked, n_targets, backend=backend)
    evidence, alphas, betas, weights = kernels.logme(
        checked, encoded, n_targets, targets, bool(exact_dimension)
    )
    return classes, to_numpy(evidence), to_numpy(alphas), to_numpy(betas), to_numpy(weights)


@finite_score("logme")
def logme(features: Any, labels: Any, *, regression: bool = False, exact_dimension: bool = False,
          backend: str = "auto") -> float:
    """LogME transferability score: mean log evidence per sample (higher is better).

    For every target column (the 0/1 indicator of each class, or each regression
    target) the evidence of a Bayesian linear model ``t = X w + noise`` with
    ``w ~ N(0, 1/alpha)``, noise ``N(0, 1/beta)`` is maximised over alpha and beta
    by the authors' fixed-point iteration (at most 11 rounds); the score is the
    mean over targets of ``log p(t | X) / N``.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Frozen features. No centring is applied (as in the original).
    labels : array_like of shape (n_samples,), or (n_samples, n_targets) for regression
        Class labels (any values), or real-valued targets when ``regression``.
        Multi-label problems: pass the 0/1 label matrix with ``regression=True``.
    regression : bool, default False
        Treat ``labels`` as real-valued targets.
    exact_dimension : bool, default False
        Matters only when N <= D. There the authors take a thin SVD with N
        components but use ``D/2 log(alpha)`` in the evidence, which inflates the
        score by ``(D - N)/(2N) log(alpha)``: False (default) reproduces that quirk,
        True uses N (the exact evidence, ``log N(t | 0, X X^T/alpha + I/beta)``).
        When N > D both give the rank-consistent evidence: the k kept directions
        (Gram eigenvalues above 1e-20 and above the Gram's rounding level
        ``lambda_max * max(N, D) * eps``) in both terms. That is what the authors'
        code computes there: its ``s > 1e-10`` test keeps the rounding-noise
        directions of rank-deficient features, each adding ``log(alpha)`` to the
        log-determinant and cancelling the ``D - rank`` surplus of its first term
        (equal to about 1e-10 on dead-ReLU and constant-pixel features, at any
        feature scale). One exception, not reproduced: for D below about 26 LAPACK's
        SVD of the Gram can return exact zeros for exactly-zero feature columns;
        the authors' code then drops them and keeps D, adding
        ``1/(2N) log(alpha)`` per such column.
    backend : {"auto", "numpy", "torch"}

    Returns
    -------
    float
    """
    _, evidence, _, _, _ = _fit(features, labels, regression, exact_dimension, backend)
    return check_finite_score(float(np.mean(evidence)), metric="logme", hint=LOGME_DEGENERATE)


class LogME(BaseEstimator):
    """LogME as a scikit-learn estimator: fits the evidence-maximising linear model per target.

    A classifier when ``regression`` is False (``predict`` returns labels, ``score`` the accuracy), a regressor
    otherwise (``score`` is R^2). ``get_params``/``set_params``/``clone`` work; ``predict`` raises
    ``sklearn.exceptions.NotFittedError`` before ``fit``. The LogME score itself is ``score_``.

    Parameters
    ----------
    regression : bool, default False
    exact_dimension : bool, default False
        See :func:`logme`.
    backend : {"auto", "numpy", "torch"}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or None
        Label values (classification).
    n_features_in_ : int
        Columns of the features seen in ``fit``.
    evidence_ : ndarray of shape (n_targets,)
        Log evidence per sample of each target.
    alphas_, betas_ : ndarray of shape (n_targets,)
        Prior precision of the weights and noise precision, per target.
    weights_ : ndarray of shape (n_features, n_targets)
        Posterior mean of the weights.
    score_ : float
        ``evidence_.mean()``, the LogME score.
    """

    def __init__(self, *, regression=False, exact_dimension=False, backend="auto"):
        self.regression = regression
        self.exact_dimension = exact_dimension
        self.backend = backend

    def fit(self, X, y):
        """Fit on features X (n_samples, n_features) and labels or targets y; returns self."""
        self.classes_, self.evidence_, self.alphas_, self.betas_, self.weights_ = _fit(
            X, y, self.regression, self.exact_dimension, self.backend
        )
        self.n_features_in_ = int(self.weights_.shape[0])
        self.score_ = float(np.mean(self.evidence_))
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor" if self.regression else "classifier"
        if self.regression:
            from sklearn.utils import RegressorTags

            tags.regressor_tags = RegressorTags()
            tags.target_tags.multi_output = True
        else:
            from sklearn.utils import ClassifierTags

            tags.classifier_tags = ClassifierTags()
        return tags

    def _check_fitted(self):
        check_is_fitted(self, "weights_")

    def score(self, X, y):
        """Accuracy of :meth:`predict` (classification) or its R^2 (regression); not the LogME score
        (``score_``)."""
        predicted = self.predict(X)
        if self.regression:
            from sklearn.metrics import r2_score

            return float(r2_score(y, predicted))
        return float(np.mean(predicted == np.asarray(y)))

    def decision_function(self, features):
        """Linear predictions ``features @ weights_``, shape (n_samples, n_targets)."""
        self._check_fitted()
        checked = np.asarray(to_numpy(check_features(features, min_samples=1, informative=False)), dtype=np.float64)
        if checked.shape[1] != self.n_features_in_:
            raise PedrankValueError(
                f"X has {checked.shape[1]} features, but LogME is expecting {self.n_features_in_} features as "
                "input (the number of columns it was fitted on)"
            )
        return checked @ self.weights_

    def predict(self, features):
        """Regression: predicted targets (n_samples, n_targets). Classification: the
        label whose indicator regression scores highest, shape (n_samples,)."""
        scores = self.decision_function(features)
        if self.regression:
            return scores
        return self.classes_[np.argmax(scores, axis=1)]


def _scale_range(n_samples: int, n_features: int, options: dict[str, Any]) -> tuple[float, float] | None:
    """Where LogME's value does not move with the features' scale (measured: tests/test_feature_scale.py).

    The exact evidence is scale-invariant: scaling X by s scales alpha by s^2 and each of the D eigenvalues of
    alpha I + beta X^T X by s^2. With fewer samples than dimensions the authors count D in D/2 log(alpha) but
    only N eigenvalues in the log-determinant, so their value moves by (D - N)/N log(s). At large scales both
    forms move too (by 1-3 % at an RMS of 80): from alpha = beta = 1 the fixed point stops at its iteration cap
    before it converges, sooner with N < D.
    """
    if n_samples < n_features:
        return (0.0, 10.0) if options.get("exact_dimension") else None
    return (0.0, 20.0)


register(ScoreEntry(
    name="logme",
    function=logme,
    reference="pedrank.reference.logme:logme",
    kernels={"logme": (("X",), ("labels",), ("n_classes",), ("targets",), ("flag", "exact_dimension"))},
    memory=memory_estimator("logme"),
    forms={"exact": {"exact_dimension": True}},
    order=0,
    scale_range=_scale_range,
))
