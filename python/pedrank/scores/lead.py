"""LEAD (Hu, Li, Tang, Liu, Hu and Duan, CVPR 2024): the logits' evolution under fine-tuning, in closed form.

"LEAD: Exploring Logit Space Evolution for Model Selection" (arXiv 2507.14559). Fine-tuning a head on the frozen
features moves the logits F by the neural-tangent-kernel ODE ``dF/dt = -eta Theta dL/dF``; with a squared loss it
is solved in closed form, ``F_t = Y + exp(-eta Theta t) (F_0 - Y)``. The class-aware decomposition replaces the
matrix ``Theta`` by one scalar per class, the mean eigenvalue ``lambda_c`` of the empirical NTK of a randomly
initialised head on ``n`` samples of class c. The score is minus the mean cross-entropy of ``softmax(F_t)``
against the labels (higher is better).

pedrank's choices where the paper is silent or unread (docs/lead.md gives each with its reason):

- the features are standardised (each column to mean 0 and variance 1) before everything else, so that the score
  does not depend on a model's feature scale;
- ``F_0`` is the class-probability matrix of a classifier fitted on the target features (the paper: "normalised
  predictions (i.e. logits)" of a multi-class SVM): multinomial logistic regression, or the least-squares head;
- the head is a ReLU MLP of hidden widths ``hidden`` in the NTK parametrisation with He gains, weights N(0, 1):
  ``a_l = relu(sqrt(2 / m_{l-1}) W_l^T a_{l-1})``, ``F = W_out^T a_L / sqrt(m_L)``, so that its NTK does not grow
  with the widths and ``eta = t = 1`` moves the logits a finite way;
- the kernel is the sum-of-logits ("pseudo-") NTK of Mohamadi and Sutherland divided by the number of classes,
  ``Theta(x, x') = grad g(x) . grad g(x') / (L + 1)`` with ``g = sum_j F_j / sqrt(C)``: the sum approximates one
  logit's block of the full empirical NTK; the division by the number of weight layers L + 1 averages the
  layers' kernels (each about ``x . x' / D``), so that lambda is about 1 on standardised features at any depth
  and ``eta * t = 1`` is one mean relaxation time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
import scipy.special

from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.validation import (
    PedrankValueError,
    check_classification,
    check_int,
    check_positive,
    finite_score,
    to_numpy,
)
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["lead", "lead_terms", "check_lead_options", "standardise", "standardised_float64", "initial_logits",
           "class_ntk_means"]

CLASSIFIERS = ("logistic", "least_squares")

#: A column whose standard deviation is at most this fraction of its largest magnitude is constant (to rounding):
#: it is centred and left unscaled, so that its rounding noise is not blown up to unit variance.
CONSTANT_COLUMN_RELATIVE = 1e-12

#: The logistic regression's stopping rule (scikit-learn's lbfgs): its default tolerance, more iterations.
LOGISTIC_TOL = 1e-4
LOGISTIC_MAX_ITER = 1000


def _as_tuple(value):
    """``tuple(value)``, or None when ``value`` is not iterable."""
    try:
        return tuple(value)
    except TypeError:
        return None


def check_lead_options(t: Any, eta: Any, n_per_class: Any, hidden: Any, classifier: Any, C: Any,
                       random_state: Any) -> tuple[float, float, int, tuple[int, ...], str, float, int]:
    """Validate LEAD's options; returns them normalised (``hidden`` as a tuple of ints)."""
    t = check_positive(t, name="t", allow_zero=True)
    eta = check_positive(eta, name="eta")
    n_per_class = check_int(n_per_class, name="n_per_class", minimum=1)
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    # a string would iterate into characters: refused whole, like anything that is not a sequence
    widths = None if isinstance(hidden, (str, bytes)) else _as_tuple(hidden)
    if widths is None:
        raise PedrankValueError(f"hidden: expected a sequence of layer widths such as (1024, 2048), "
                                f"found {hidden!r}")
    hidden = widths
    hidden = tuple(check_int(width, name="hidden", minimum=1) for width in hidden)
    if classifier not in CLASSIFIERS:
        raise PedrankValueError(f"classifier: expected one of {CLASSIFIERS}, found {classifier!r}")
    C = check_positive(C, name="C")
    random_state = check_int(random_state, name="random_state", minimum=0)
    return t, eta, n_per_class, hidden, classifier, C, random_state


def standardise(features: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """Columns to mean 0 and variance 1 (population variance); constant columns are only centred.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features), float64
        The features.
    overwrite : bool, default=False
        Standardise ``features`` in place and return it (for a copy the caller owns, such as a float32 input's
        float64 conversion); by default ``features`` is left as it is and one new array is returned.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        The standardised features. The largest magnitude is ``max(max, -min)`` and the variance the column sums of
        the centred squares (``einsum``), with no other array of the features' size: the values are the two-pass
        formula's to rounding (about 1e-14 relative to ``np.std``'s summation order).
    """
    mean = features.mean(axis=0)
    largest = np.maximum(features.max(axis=0), -features.min(axis=0))
    centred = np.subtract(features, mean, out=features if overwrite else None)
    spread = np.sqrt(np.einsum("ij,ij->j", centred, centred) / features.shape[0])
    scale = np.where(spread > CONSTANT_COLUMN_RELATIVE * largest, spread, 1.0)
    centred /= scale
    return centred


def standardised_float64(features: Any) -> np.ndarray:
    """:func:`standardise` of the features as float64, without writing the caller's data.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        The (validated) features.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64
        The standardised features: computed in place in their float64 conversion when that conversion is a new
        array (a float32 input, a list), else in a new array (a float64 array or a CPU tensor is the caller's).
    """
    values = to_numpy(features, np.float64)
    return standardise(values, overwrite=values is not features and values.flags.owndata
                       and values.flags.writeable)


def initial_logits(standardised: np.ndarray, encoded: np.ndarray, n_classes: int, *, classifier: str, C: float,
                   random_state: int) -> np.ndarray:
    """F_0: the fitted classifier's class probabilities on the target samples, shape (N, C).

    "logistic": scikit-learn's multinomial ``LogisticRegression(C=C)`` (lbfgs), ``predict_proba``.
    "least_squares": the ridge head on one-hot targets, ``argmin |Z W + 1 b^T - Y|^2 + |W|^2 / C``; its rows sum
    to 1 (each is a least-squares estimate of p(y | x)), solved in the primal or the dual, whichever is smaller.
    """
    n_samples, n_features = standardised.shape
    if classifier == "logistic":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=C, tol=LOGISTIC_TOL, max_iter=LOGISTIC_MAX_ITER, random_state=random_state)
        model.fit(standardised, encoded)
        return np.asarray(model.predict_proba(standardised), dtype=np.float64)
    onehot = np.zeros((n_samples, n_classes))
    onehot[np.arange(n_samples), encoded] = 1.0
    priors = onehot.mean(axis=0)
    # Z is centred, so the intercept is the class frequencies and W solves the centred ridge problem.
    targets = onehot - priors
    if n_features <= n_samples:
        gram = standardised.T @ standardised
        gram[np.diag_indices_from(gram)] += 1.0 / C
        weights = scipy.linalg.solve(gram, standardised.T @ targets, assume_a="pos")
        return standardised @ weights + priors
    gram = standardised @ standardised.T
    gram[np.diag_indices_from(gram)] += 1.0 / C
    dual = scipy.linalg.solve(gram, targets, assume_a="pos")
    return targets - dual / C + priors  # Z Z^T (Z Z^T + I / C)^-1 T = T - (Z Z^T + I / C)^-1 T / C


def draw_head(n_features, n_classes, hidden, rng):
    """The head's weights, N(0, 1), drawn in order W_1, ..., W_L, W_out (shapes (m_{l-1}, m_l), (m_L, C))."""
    widths = (n_features,) + hidden
    layers = [rng.standard_normal((fan_in, fan_out)) for fan_in, fan_out in zip(widths[:-1], widths[1:])]
    return layers, rng.standard_normal((widths[-1], n_classes))


def draw_samples(encoded, n_classes, n_per_class, rng):
    """For each class in order, its samples: the first ``n_per_class`` of the class in the order of one random
    permutation of all samples (all of a smaller class). Which samples are drawn does not depend on the classes'
    names or order."""
    order = rng.permutation(encoded.shape[0])
    ranked = encoded[order]
    return [order[ranked == c][:n_per_class] for c in range(n_classes)]


def ntk_diagonal(rows, layers, output):
    """Theta(x, x) for each row: the squared norm of grad_theta sum_j F_j(x) / sqrt(C) over every head weight,
    divided by the number of weight layers L + 1 (each layer adds about |x|^2 / D: the mean stays near 1).

    For the MLP ``h_l = sqrt(2 / m_{l-1}) a_{l-1} W_l``, ``a_l = relu(h_l)``, ``F = a_L W_out / sqrt(m_L)``:
    the output layer adds ``|a_L|^2 / m_L``, hidden layer l adds ``(2 / m_{l-1}) |a_{l-1}|^2 |d_l|^2`` with
    ``d_L = 1[h_L > 0] * W_out 1 / sqrt(m_L C)`` and ``d_{l-1} = 1[h_{l-1} > 0] * sqrt(2 / m_{l-1}) d_l W_l^T``.

    Only the activations' squared norms and the gates are kept from the forward pass, and each layer's product is
    scaled, gated and rectified in place: the same operations in the same order as the plain form (bitwise the
    same values), with one n x m_l buffer a layer instead of four.
    """
    width, n_classes = output.shape
    below = rows
    input_norms = []
    gates = []
    for weights in layers:
        input_norms.append(np.einsum("ij,ij->i", below, below))
        pre = below @ weights
        pre *= np.sqrt(2.0 / weights.shape[0])
        gates.append(pre > 0)
        below = np.maximum(pre, 0.0, out=pre)
    diagonal = np.einsum("ij,ij->i", below, below) / width
    if not layers:
        return diagonal
    # d_L overwrites a_L's buffer (its norm is taken)
    delta = np.multiply(gates[-1], output.sum(axis=1) / np.sqrt(width * n_classes), out=below)
    for index in range(len(layers) - 1, -1, -1):
        weights = layers[index]
        gain = 2.0 / weights.shape[0]
        diagonal += gain * input_norms[index] * np.einsum("ij,ij->i", delta, delta)
        if index > 0:
            back = delta @ weights.T
            back *= np.sqrt(gain)
            delta = np.multiply(gates[index - 1], back, out=back)
    return diagonal / (len(layers) + 1)


def class_ntk_means(standardised: np.ndarray, encoded: np.ndarray, n_classes: int, *, n_per_class: int,
                    hidden: tuple[int, ...], random_state: int) -> np.ndarray:
    """lambda_c: the mean eigenvalue (trace / n) of each class's empirical NTK, shape (C,)."""
    rng = np.random.default_rng(random_state)
    layers, output = draw_head(standardised.shape[1], n_classes, hidden, rng)
    chosen = draw_samples(encoded, n_classes, n_per_class, rng)
    rows = np.concatenate(chosen)
    diagonal = ntk_diagonal(standardised[rows], layers, output)
    stops = np.cumsum([members.shape[0] for members in chosen])
    return np.array([part.mean() for part in np.split(diagonal, stops[:-1])])


@follows_thread_policy
def lead_terms(features: Any, labels: Any, *, t: float = 1.0, eta: float = 1.0, n_per_class: int = 64,
               hidden: int | Sequence[int] = (1024, 2048), classifier: str = "logistic", C: float = 1.0,
               random_state: int = 0, backend: str = "auto") -> dict[str, Any]:
    """LEAD's parts: ``{"score", "initial_logits", "final_logits", "eigenvalues", "decay"}``.

    ``decay[c] = exp(-eta * lambda_c * t)``; ``final_logits = Y + decay[y] (initial_logits - Y)``. Options as
    :func:`lead`.
    """
    t, eta, n_per_class, hidden, classifier, C, random_state = check_lead_options(
        t, eta, n_per_class, hidden, classifier, C, random_state)
    features, encoded, classes = check_classification(features, labels)
    select_kernels(features, backend)  # validates the backend; LEAD computes in NumPy
    standardised = standardised_float64(features)
    n_samples = standardised.shape[0]
    n_classes = classes.shape[0]
    start = initial_logits(standardised, encoded, n_classes, classifier=classifier, C=C, random_state=random_state)
    eigenvalues = class_ntk_means(standardised, encoded, n_classes, n_per_class=n_per_class, hidden=hidden,
                                  random_state=random_state)
    decay = np.exp(-eta * eigenvalues * t)
    onehot = np.zeros((n_samples, n_classes))
    onehot[np.arange(n_samples), encoded] = 1.0
    final = onehot + decay[encoded][:, None] * (start - onehot)
    log_probabilities = scipy.special.log_softmax(final, axis=1)
    score = float(np.mean(log_probabilities[np.arange(n_samples), encoded]))
    return {"score": score, "initial_logits": start, "final_logits": final, "eigenvalues": eigenvalues,
            "decay": decay}


@finite_score("lead")
def lead(features: Any, labels: Any, *, t: float = 1.0, eta: float = 1.0, n_per_class: int = 64,
         hidden: int | Sequence[int] = (1024, 2048), classifier: str = "logistic", C: float = 1.0,
         random_state: int = 0, backend: str = "auto") -> float:
    """LEAD transferability score (Hu et al., CVPR 2024): minus the cross-entropy of the evolved logits.

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model (standardised per column before use).
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    t : float, default=1.0
        The time at which the logits are read (>= 0; the paper's default 1). ``t=0`` scores F_0 itself.
    eta : float, default=1.0
        The learning rate of the ODE (> 0); only ``eta * t`` matters.
    n_per_class : int, default=64
        Samples of each class whose NTK gives its eigenvalue (all of a smaller class); the paper's default.
    hidden : sequence of int, default=(1024, 2048)
        Hidden widths of the random ReLU head (the paper's); ``()`` is a linear head, ``Theta = x . x' / D``.
    classifier : {"logistic", "least_squares"}, default="logistic"
        What gives the initial logits F_0 (class probabilities): multinomial logistic regression (scikit-learn,
        lbfgs) or the ridge least-squares head on one-hot targets (closed form).
    C : float, default=1.0
        Inverse regularisation of that classifier (scikit-learn's ``C``; the ridge penalty is ``1 / C``).
    random_state : int, default=0
        Seeds the head's weights and the per-class samples.
    backend : {"auto", "numpy", "torch"}, default="auto"
        Accepted for a uniform signature; LEAD computes in NumPy (a tensor is copied to the host).

    Returns
    -------
    float
        ``mean_i log softmax(F_t(x_i))[y_i]`` with ``F_t(x) = y + exp(-eta lambda_y t) (F_0(x) - y)``: at most 0,
        higher is better.

    Notes
    -----
    Depends on ``random_state`` through the random head (docs/lead.md measures how much). The classifier is fitted
    and evaluated on the same samples, as in the paper.
    """
    return lead_terms(features, labels, t=t, eta=eta, n_per_class=n_per_class, hidden=hidden,
                      classifier=classifier, C=C, random_state=random_state, backend=backend)["score"]


register(ScoreEntry(name="lead", function=lead, reference="pedrank.reference.lead:lead", order=15,
                    scale_range=(0.0, math.inf)))
