"""NLEEP: LEEP with a Gaussian mixture in place of the source classifier
(Li et al., "Ranking Neural Checkpoints", CVPR 2021)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pedrank._engine.backend import to_numpy
from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.memory import check_memory, nleep_bytes
from pedrank._engine.mixture import fit_gaussian_mixture
from pedrank._engine.validation import PedrankValueError, check_classification, check_int, finite_score
from pedrank.scores.leep import expected_empirical_prediction
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["nleep"]


def check_nleep_options(components_per_class, variance_kept):
    check_int(components_per_class, name="components_per_class", minimum=1)
    try:
        fraction = float(variance_kept)
    except (TypeError, ValueError):
        fraction = float("nan")
    if not 0.0 < fraction < 1.0:
        raise PedrankValueError(
            f"variance_kept: expected a fraction strictly between 0 and 1, found {variance_kept!r}"
        )


def check_nleep_memory(n_samples, n_features, n_mixture, reduced_dim=None, *, implementation="core"):
    """Refuse NLEEP before its PCA (``reduced_dim=None``) or its mixture when it would not fit in memory."""
    needed = nleep_bytes(n_samples, n_features, n_mixture, reduced_dim)
    stage = "PCA" if reduced_dim is None else f"{n_mixture}-component mixture on {reduced_dim} PCA dimensions"
    check_memory(
        needed,
        what=f"nleep ({implementation}) {stage}, {n_samples} x {n_features} features",
        advice="score a random subsample of the samples, lower components_per_class or variance_kept, "
        "or project the features to fewer dimensions first",
    )


def mixture_posteriors(features, n_classes, *, components_per_class, variance_kept, random_state):
    """Soft assignments p(z | x_i) of NLEEP's Gaussian mixture.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features), float64
    n_classes : int
        C; the mixture has ``components_per_class * C`` components, at most n_samples.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    check_nleep_options(components_per_class, variance_kept)
    if not np.ptp(features, axis=0).any():
        raise PedrankValueError(
            "features: every column is constant (zero variance); NLEEP's PCA and mixture "
            "need features that vary across samples"
        )
    # scikit-learn is imported here, not at module level: it adds ~2 s to `import pedrank`.
    from sklearn.decomposition import PCA

    reduced = PCA(n_components=variance_kept, svd_solver="full").fit_transform(features)
    # More components than samples cannot be fitted; C close to N caps the mixture at N.
    n_components = min(components_per_class * n_classes, features.shape[0])
    check_nleep_memory(features.shape[0], features.shape[1], n_components, reduced.shape[1])
    try:
        # scikit-learn's GaussianMixture(covariance_type="full") fit, iterate for iterate (pedrank._mixture).
        mixture = fit_gaussian_mixture(reduced, n_components, random_state=random_state)
    except ValueError as error:
        # scikit-learn's covariance regularisation (1e-6) is absolute: a component that
        # collapses onto a few samples of large-magnitude features has a singular covariance.
        raise PedrankValueError(
            f"features: the Gaussian mixture of {n_components} components could not be fitted "
            f"on {reduced.shape} PCA-reduced features (a component collapsed onto too few "
            "samples); standardise or rescale the features, or lower components_per_class"
        ) from error
    return mixture.posteriors


@finite_score("nleep")
@follows_thread_policy
def nleep(
    features: Any, labels: Any, *, components_per_class: int = 5, variance_kept: float = 0.8, random_state: Any = 0,
    log: bool = False, backend: str = "auto"
) -> float:
    """NLEEP transferability score (Li et al., CVPR 2021).

    Parameters
    ----------
    features : array_like of shape (n_samples, n_features) or torch.Tensor
        Target features from the pre-trained model.
    labels : array_like of shape (n_samples,)
        Target labels, any values; mapped to 0..C-1 in sorted order.
    components_per_class : int, default=5
        The mixture has ``components_per_class * C`` components (at most n_samples).
    variance_kept : float, default=0.8
        Fraction of variance the PCA keeps (scikit-learn ``PCA(n_components=0.8)``),
        strictly between 0 and 1.
    random_state : int, numpy.random.RandomState or None, default=0
        Seeds the mixture's k-means initialisation exactly as scikit-learn's
        ``GaussianMixture`` does: the score is deterministic given it (None reproduces
        the authors' unseeded, run-to-run varying behaviour; their code run after
        ``np.random.seed(s)`` returns pedrank's number for ``random_state=s``).
    log : bool, default=False
        False: mean of p(y_i | x_i), as the PED/SFDA authors' code (in (0, 1]).
        True: mean of log p(y_i | x_i), the form of the original NLEEP paper (<= 0).
    backend : {"auto", "numpy", "torch"}, default="auto"
        Kernels for the class sums of the soft assignments (the PCA, scikit-learn's,
        and the mixture, :mod:`pedrank._engine.mixture`, run on the host).

    Returns
    -------
    float
        Higher is better.

    Raises
    ------
    ValueError
        Invalid inputs or options, features with no variance at all, or a mixture that
        cannot be fitted (scikit-learn's covariance floor of 1e-6 is absolute, so
        features of very large magnitude, e.g. scaled by 1e6, can collapse a component:
        standardise them first).

    Notes
    -----
    Features go through PCA keeping ``variance_kept`` of the variance, then a
    full-covariance Gaussian mixture gives soft assignments p(z | x_i). With the joint
    P(y, z) = 1/N sum_{i: y_i = y} p(z | x_i), the score averages
    p(y_i | x_i) = sum_z P(y_i | z) p(z | x_i) over samples (LEEP with mixture
    components in place of source classes). Not scale-invariant: the mixture's
    covariance floor is absolute, so features scaled by 1e-6 drown in it and score as
    uninformative (1/C-like values).

    The mixture is scikit-learn's ``GaussianMixture(covariance_type="full")`` fit (its
    k-means initialisation, EM iterates and stopping rule), computed by
    :func:`pedrank._engine.mixture.fit_gaussian_mixture`, which skips the pairs whose
    responsibility underflows to exactly 0: the same fit to rounding, 7-15x faster on
    the benchmark's mixtures of 100 and 200 components (BENCHMARKS.md, "NLEEP's mixture").
    """
    checked, encoded, classes = check_classification(features, labels)
    check_nleep_options(components_per_class, variance_kept)
    n_samples, n_features = checked.shape
    check_nleep_memory(n_samples, n_features, min(components_per_class * classes.shape[0], n_samples))
    kernels = select_kernels(checked, backend)
    posteriors = mixture_posteriors(
        np.asarray(to_numpy(checked), dtype=np.float64),
        classes.shape[0],
        components_per_class=components_per_class,
        variance_kept=variance_kept,
        random_state=random_state,
    )
    predictions = expected_empirical_prediction(posteriors, encoded, classes.shape[0], kernels)
    return float(np.mean(np.log(predictions)) if log else np.mean(predictions))


def _memory(n_samples, n_features, n_classes, *, dtype_size, implementation="core"):
    # The PCA stage; the mixture stage is checked again once the PCA's dimension is known.
    return nleep_bytes(n_samples, n_features, 5 * n_classes)


register(ScoreEntry(name="nleep", function=nleep, reference="pedrank.reference.nleep:nleep", memory=_memory,
                    forms={"exact": {"log": True}}, order=3))
