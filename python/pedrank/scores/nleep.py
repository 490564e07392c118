"""NLEEP: LEEP with a Gaussian mixture in place of the source classifier
(Li et al., "Ranking Neural Checkpoints", CVPR 2021)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pedrank._engine.array_kernels import TorchKernels
from pedrank._engine.backend import is_torch_tensor, to_numpy
from pedrank._engine.config import follows_thread_policy
from pedrank._engine.kernels import select_kernels
from pedrank._engine.memory import check_memory, nleep_bytes
from pedrank._engine.mixture import fit_gaussian_mixture
from pedrank._engine.mixture_torch import fit_gaussian_mixture_torch, pca_reduce
from pedrank._engine.validation import (
    PedrankValueError,
    check_bool,
    check_classification,
    check_int,
    feature_scale,
    finite_score,
)
from pedrank.scores.leep import expected_empirical_prediction
from pedrank.scores.registry import ScoreEntry, register

__all__ = ["nleep"]


def check_nleep_options(components_per_class, variance_kept, *, n_classes=None, n_samples=None):
    """Refuse bad NLEEP options; given ``n_classes`` and ``n_samples``, also a mixture of as many components as
    samples or more.

    ``components_per_class * n_classes >= n_samples`` is refused: scikit-learn's ``GaussianMixture`` (the
    authors' code) raises for more components than samples, and with as many every sample is its own
    component, so the score is its maximum (1.0, or 0 with ``log=True``) whatever the features (capping the
    mixture at N did that).
    """
    check_int(components_per_class, name="components_per_class", minimum=1)
    try:
        fraction = float(variance_kept)
    except (TypeError, ValueError):
        fraction = float("nan")
    if not 0.0 < fraction < 1.0:
        raise PedrankValueError(
            f"variance_kept: expected a fraction strictly between 0 and 1, found {variance_kept!r}"
        )
    if n_classes is None or n_samples is None:
        return
    n_components = int(components_per_class) * int(n_classes)
    if n_components >= n_samples:
        largest = (int(n_samples) - 1) // int(n_classes)
        remedy = (f"lower components_per_class to at most (n_samples - 1) // C = {largest}, or give more samples"
                  if largest >= 1 else f"give more samples (at least C + 1 = {int(n_classes) + 1} for one "
                  "component per class)")
        raise PedrankValueError(
            f"components_per_class: components_per_class * C = {components_per_class} * {n_classes} classes = "
            f"{n_components} mixture components for n_samples = {n_samples} samples; NLEEP's Gaussian mixture "
            "needs fewer components than samples (with as many, every sample is its own component and the "
            f"score is its maximum, 1.0 (0 with log=True), whatever the features); {remedy}"
        )


#: Smallest feature scale (:func:`pedrank._engine.validation.feature_scale`, the RMS of the centred features) at which
#: NLEEP is scored: the mixture adds scikit-learn's absolute ``reg_covar`` (1e-6) to every covariance, which at
#: smaller scales outweighs the features' variance, so every sample falls in one blob and the score drops to about
#: 1/C whatever the features (measured: 1.0 -> 0.250 for well-separated features between scales 0.0027 and 0.00027).
NLEEP_SMALLEST_SCALE = 0.002


def check_nleep_scale(scale):
    """Refuse features whose scale is below :data:`NLEEP_SMALLEST_SCALE` (the score would not read them)."""
    if scale < NLEEP_SMALLEST_SCALE:
        raise PedrankValueError(
            f"features: found a scale (RMS of the centred features) of {scale:.3g}, below {NLEEP_SMALLEST_SCALE}: "
            "NLEEP's Gaussian mixture adds an absolute 1e-6 to every covariance (scikit-learn's reg_covar), which "
            "then outweighs the features' variance, and the score falls towards 1/C whatever the features encode; "
            "expected features of a larger scale: standardise them, or multiply them by a constant"
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
    features : ndarray or torch.Tensor of shape (n_samples, n_features), float64
        A tensor is reduced and fitted by torch on its device (:mod:`pedrank._engine.mixture_torch`), an
        ndarray on the host (scikit-learn's PCA, :mod:`pedrank._engine.mixture`): the same numbers to rounding.
    n_classes : int
        C; the mixture has ``components_per_class * C`` components, which must be fewer than n_samples
        (:class:`~pedrank.PedrankValueError` otherwise).

    Returns
    -------
    ndarray or torch.Tensor (as ``features``) of shape (n_samples, n_components)
    """
    check_nleep_options(components_per_class, variance_kept, n_classes=n_classes, n_samples=features.shape[0])
    on_torch = is_torch_tensor(features)
    spread = features.amax(dim=0) - features.amin(dim=0) if on_torch else np.ptp(features, axis=0)
    if not bool(spread.any()):
        raise PedrankValueError(
            "features: every column is constant (zero variance); NLEEP's PCA and mixture "
            "need features that vary across samples"
        )
    if on_torch:
        reduced = pca_reduce(features, variance_kept)
        fit = fit_gaussian_mixture_torch
    else:
        # scikit-learn is imported here, not at module level: it adds ~2 s to `import pedrank`.
        from sklearn.decomposition import PCA

        reduced = PCA(n_components=variance_kept, svd_solver="full").fit_transform(features)
        fit = fit_gaussian_mixture
    n_components = components_per_class * n_classes  # fewer than the samples (check_nleep_options)
    check_nleep_memory(features.shape[0], features.shape[1], n_components, reduced.shape[1])
    try:
        # scikit-learn's GaussianMixture(covariance_type="full") fit, iterate for iterate (pedrank._mixture).
        mixture = fit(reduced, n_components, random_state=random_state)
    except ValueError as error:
        # scikit-learn's covariance regularisation (1e-6) is absolute: a component that
        # collapses onto a few samples of large-magnitude features has a singular covariance.
        raise PedrankValueError(
            f"features: the Gaussian mixture of {n_components} components could not be fitted "
            f"on {reduced.shape} PCA-reduced features (a component collapsed onto too few "
            "samples); standardise or rescale the features, or lower components_per_class"
        ) from error
    return mixture.posteriors


def mixture_device(features: Any, backend: Any, kernels: Any) -> Any:
    """Where NLEEP's PCA and mixture run: a torch device, or None for the host.

    torch for ``backend="torch"``, for a tensor with ``backend="auto"``, and for a torch kernel set passed as
    ``backend`` (the mixture is float64 whatever that set's dtype): on the tensor's device, else on the kernel
    set's device if it has one, else on the CPU.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features) or torch.Tensor
        The validated features.
    backend : str or kernel set
        The score's ``backend`` argument.
    kernels : kernel set
        What :func:`~pedrank._engine.kernels.select_kernels` chose for them.

    Returns
    -------
    torch.device, str or None
    """
    if isinstance(backend, str):
        on_torch = backend == "torch" or (backend == "auto" and is_torch_tensor(features))
    else:
        kernel_backend = getattr(kernels, "backend", None)
        on_torch = isinstance(kernels, TorchKernels) or getattr(kernel_backend, "name", None) == "torch"
    if not on_torch:
        return None
    if is_torch_tensor(features):
        return features.device
    return getattr(getattr(kernels, "backend", None), "device", "cpu")


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
        The mixture has ``components_per_class * C`` components, which must be fewer than
        n_samples: with as many, every sample would be its own component and the score 1.0
        for any features, so ``components_per_class * C >= n_samples`` is refused (lower
        it to at most ``(n_samples - 1) // C``, or give more samples).
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
    backend : {"auto", "numpy", "torch"} or kernel set, default="auto"
        Where the PCA and the mixture run. "auto" with a torch tensor, "torch" (on the CPU
        for non-tensor features) or a torch kernel set: as torch operations in float64 on
        the tensor's device (:mod:`pedrank._engine.mixture_torch`: scikit-learn's PCA
        semantics, scikit-learn's k-means initialisation run on the host, then the EM on the
        device). Otherwise scikit-learn's PCA and :mod:`pedrank._engine.mixture` on the
        host. Both give the same score and posteriors to 1e-6 or better (tests/test_nleep_torch.py).
        The torch path has only been run on CPU torch so far (no GPU was lent where it was
        written): on the CPU it is slower than the host path (BENCHMARKS.md, "NLEEP on torch").

    Returns
    -------
    float
        Higher is better.

    Raises
    ------
    ValueError
        Invalid inputs or options, ``components_per_class * C >= n_samples`` (scikit-learn's
        ``GaussianMixture``, the authors' code, raises for more components than samples),
        features with no variance at all, or a mixture that
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
    On torch, :func:`pedrank._engine.mixture_torch.fit_gaussian_mixture_torch` runs the
    same EM (same initialisation, iterates, skipping and stopping rule) batched over
    blocks of components.
    """
    check_bool(log, name="log")
    checked, encoded, classes = check_classification(features, labels)
    n_samples, n_features = checked.shape
    check_nleep_options(components_per_class, variance_kept, n_classes=classes.shape[0], n_samples=n_samples)
    check_nleep_memory(n_samples, n_features, components_per_class * classes.shape[0])
    check_nleep_scale(feature_scale(checked))
    kernels = select_kernels(checked, backend)
    device = mixture_device(checked, backend, kernels)
    if device is not None:
        import torch

        if not is_torch_tensor(checked):  # a float64 copy (the host path makes one too): read-only arrays are fine
            checked = torch.from_numpy(np.array(checked, dtype=np.float64))
        host_or_device = checked.detach().to(device=device, dtype=torch.float64)
    else:
        host_or_device = np.asarray(to_numpy(checked), dtype=np.float64)
    posteriors = mixture_posteriors(
        host_or_device,
        classes.shape[0],
        components_per_class=components_per_class,
        variance_kept=variance_kept,
        random_state=random_state,
    )
    # The (N, K) posteriors come to the host (N x K, against the N x D features) for LEEP's class sums.
    predictions = expected_empirical_prediction(
        np.asarray(to_numpy(posteriors), dtype=np.float64), encoded, classes.shape[0], kernels)
    return float(np.mean(np.log(predictions)) if log else np.mean(predictions))


def _memory(n_samples, n_features, n_classes, *, dtype_size, implementation="core"):
    # The PCA stage; the mixture stage is checked again once the PCA's dimension is known.
    return nleep_bytes(n_samples, n_features, 5 * n_classes)


register(ScoreEntry(name="nleep", function=nleep, reference="pedrank.reference.nleep:nleep", memory=_memory,
                    forms={"exact": {"log": True}}, order=3,
                    scale_range=(NLEEP_SMALLEST_SCALE, 1e4)))  # the mixture's absolute reg_covar (1e-6)
