"""NLEEP's PCA and Gaussian mixture as torch operations, on the device the features live on (float64).

:func:`pca_reduce` is ``sklearn.decomposition.PCA(n_components=variance_kept, svd_solver="full").fit_transform``
(centre, thin SVD, scikit-learn's sign convention, as many components as keep ``variance_kept`` of the variance)
and :func:`fit_gaussian_mixture_torch` is :func:`pedrank._engine.mixture.fit_gaussian_mixture`: scikit-learn's
``GaussianMixture(covariance_type="full")`` fit, with scikit-learn's own k-means initialisation (run on the host,
on a host copy of the reduced features, exactly as ``GaussianMixture`` calls it; only the N labels go to the
device), the same EM iterates (``reg_covar`` 1e-6), the same stopping rule (lower bound change below ``tol`` 1e-3,
at most ``max_iter`` 100 iterations, scikit-learn's warning otherwise) and the same exact-zero skipping: the M-step
accumulates each component over the rows whose responsibility is non-zero, and the E-step evaluates only the pairs
that the host fit's sketch bound (:data:`pedrank._engine.mixture.SKETCH_RANK` columns, margin
:data:`~pedrank._engine.mixture.PRUNE_MARGIN`) cannot prove to underflow to 0. The constants, the initialisation,
the bound's basis and the warning are the host module's, read from it (tests/test_nleep_torch.py: the NLEEP values
and posteriors equal the host path's to 1e-6 or better).

Why a second EM rather than one written over :mod:`pedrank._engine.backend`: the host fit's speed comes from
LAPACK/BLAS calls on in-place Fortran views (``dsyrk`` into a covariance's lower triangle, ``dtrsm`` / ``dtrmm``
overwriting a reused row buffer, ``dpotrf`` in place) made one component at a time over that component's own rows.
torch has no ``syrk`` and no in-place triangular solve on such views, and on a GPU a loop over hundreds of
components with data-dependent row counts would launch thousands of tiny kernels. So here each step is batched over
*blocks of consecutive components* (their factors and means are views, never gathered copies): a block gathers
every member's rows (those with a non-zero responsibility in the M-step, the pairs to evaluate in the E-step)
padded to the block's largest count (padding rows weigh 0 and are never read back), blocks sized to
:data:`BLOCK_BYTES`. NLEEP's components hold similar numbers of rows (about N / K), so the padding stays small. The
E-step's log-densities use the covariances' Cholesky factors (batched ``solve_triangular``), the M-step batched
products written into (K, d, d) buffers allocated once per fit.

Only run on CPU torch so far (no GPU was lent to the session that wrote it); BENCHMARKS.md, "NLEEP on torch".
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import numpy as np

from pedrank import _core
from pedrank._engine import mixture as host
from pedrank._engine.mixture import GaussianMixtureFit, MixtureFitError

__all__ = ["BLOCK_BYTES", "fit_gaussian_mixture_torch", "pca_reduce", "torch_threads_on_policy"]

#: Bytes of one gathered (components, rows, d) float64 block, and of its solved copy.
BLOCK_BYTES = 128 << 20


@contextlib.contextmanager
def torch_threads_on_policy(features: Any) -> Iterator[None]:
    """For features on the CPU, torch's intra-op threads follow pedrank's thread policy during the call (one thread
    below 2e6 entries, else the free cores, or :func:`pedrank.set_threads`' count), restored after; on another
    device nothing changes. torch's OpenMP workers spin like OpenBLAS's: on the shared 2-core VM under load a
    2,000 x 52 fit took 2.4-4.3 s on torch's 2 threads and 0.8 s on 1.

    Parameters
    ----------
    features : torch.Tensor of shape (N, D)
        The call's features; their shape sizes the policy's thread count.
    """
    if features.device.type != "cpu":
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(_core.call_threads(int(features.shape[0]), int(features.shape[1]))))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def pca_reduce(features: Any, variance_kept: float) -> Any:
    """``PCA(n_components=variance_kept, svd_solver="full").fit_transform(features)``, on the features' device.

    Parameters
    ----------
    features : torch.Tensor of shape (N, D), float64
        Read only.
    variance_kept : float
        Fraction of the variance to keep, strictly between 0 and 1.

    Returns
    -------
    torch.Tensor of shape (N, k), float64
        ``U[:, :k] * S[:k]`` of the centred features' thin SVD, signs flipped as scikit-learn's
        ``svd_flip(u_based_decision=False)`` does (largest-magnitude entry of each right singular vector
        positive), k the fewest components whose cumulated explained variance ratio exceeds ``variance_kept``.
    """
    with torch_threads_on_policy(features):
        return _pca_reduce(features, variance_kept)


def _pca_reduce(features, variance_kept):
    import torch

    n_samples = features.shape[0]
    centred = features - features.mean(dim=0)
    left, singular, right = torch.linalg.svd(centred, full_matrices=False)
    del centred
    pivots = right.abs().argmax(dim=1)
    signs = torch.sign(right[torch.arange(right.shape[0], device=right.device), pivots])
    explained = singular**2 / (n_samples - 1)
    ratio_cumsum = torch.cumsum(explained / explained.sum(), dim=0)
    threshold = torch.tensor([float(variance_kept)], dtype=ratio_cumsum.dtype, device=ratio_cumsum.device)
    kept = int(torch.searchsorted(ratio_cumsum, threshold, right=True).item()) + 1
    return left[:, :kept] * (singular[:kept] * signs[:kept])


def fit_gaussian_mixture_torch(features: Any, n_components: int, *, random_state: Any = 0,
                               prune: bool | None = None) -> GaussianMixtureFit:
    """Fit NLEEP's Gaussian mixture on torch, as :func:`pedrank._engine.mixture.fit_gaussian_mixture` does.

    Parameters
    ----------
    features : torch.Tensor of shape (N, d)
        Read only; the fit runs in float64 on its device.
    n_components : int
        K, between 1 and N.
    random_state : int, numpy.random.RandomState or None, default=0
        Seeds scikit-learn's ``KMeans`` initialisation as ``GaussianMixture`` does (it runs on the host).
    prune : bool or None, default=None
        Skip the pairs whose responsibility is provably 0 in the E-step (None: when d >= 32), as the host fit.

    Returns
    -------
    GaussianMixtureFit
        With float64 tensors on the features' device; ``posteriors`` has shape (N, K).

    Raises
    ------
    MixtureFitError
        A covariance is not positive definite or not finite (scikit-learn's ``ValueError``).
    PedrankValueError
        ``n_components`` outside 1..N.

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        After ``MAX_ITER`` iterations without convergence, with scikit-learn's message.
    """
    with torch_threads_on_policy(features):
        return _fit(features, n_components, random_state=random_state, prune=prune)


def _fit(features, n_components, *, random_state, prune):
    import torch

    X = features.detach().to(torch.float64)
    n_samples, n_features = X.shape
    n_components = host.checked_component_count(n_components, n_samples)
    if prune is None:
        prune = n_features >= host.MIN_DIM_TO_PRUNE and n_components > 1

    labels = host.kmeans_labels(X.cpu().numpy(), n_components, random_state)
    # One-hot responsibilities, component-major (K, N) as in the host fit.
    resp = torch.zeros((n_components, n_samples), dtype=torch.float64, device=X.device)
    resp[torch.as_tensor(labels, device=X.device), torch.arange(n_samples, device=X.device)] = 1.0
    # The (K, d, d) covariances and factors are rewritten in place by every M-step: on the host a fresh 1.7 GB
    # array per M-step (K = 500, d = 647) costs seconds of page faults (see pedrank._engine.mixture._Buffers).
    buffers = (torch.empty((n_components, n_features, n_features), dtype=torch.float64, device=X.device),
               torch.empty((n_components, n_features, n_features), dtype=torch.float64, device=X.device))
    params = _m_step(X, resp, buffers, normalise_weights=False)
    sketch = torch.as_tensor(host.sketch_basis(n_features), device=X.device) if prune else None

    lower_bound = -np.inf
    converged = False
    n_iter = 0
    for n_iter in range(1, host.MAX_ITER + 1):
        previous = lower_bound
        log_norm, resp, evaluated = _e_step(X, params, sketch)
        if evaluated > host.USELESS_SHARE:
            sketch = None
        params = _m_step(X, resp, buffers, normalise_weights=True)
        lower_bound = float(log_norm.mean().item())
        if abs(lower_bound - previous) < host.TOL:
            converged = True
            break
    if not converged:
        host.warn_not_converged(stacklevel=3)
    _, resp, _ = _e_step(X, params, sketch)
    weights, means, covariances, factors = params
    return GaussianMixtureFit(weights=weights, means=means, covariances=covariances, cholesky_factors=factors,
                              lower_bound=lower_bound, n_iter=n_iter, converged=converged, posteriors=resp.T)


def _blocks(counts, row_bytes, n_samples):
    """Consecutive blocks of components ``[start, stop)`` (so that their parameters are views, not copies), each
    with ``(stop - start) * m * row_bytes <= BLOCK_BYTES`` (or a single component), m the block's largest count.

    Parameters
    ----------
    counts : torch.Tensor of shape (K,), int
        Pairs (rows) per component, out of ``n_samples``; moved to the host (one synchronisation).

    Yields
    ------
    start, stop, m : int
    every_pair : bool
        Every component of the block has all ``n_samples`` pairs. Blocks without any pair are skipped.
    """
    host_counts = counts.cpu().numpy()
    start = 0
    while start < host_counts.size:
        stop, width = start + 1, int(host_counts[start])
        while stop < host_counts.size and (stop + 1 - start) * max(width, host_counts[stop]) * row_bytes <= BLOCK_BYTES:
            width = max(width, int(host_counts[stop]))
            stop += 1
        if width:
            yield start, stop, width, bool(host_counts[start:stop].min() == n_samples)
        start = stop


def _padded_pairs(mask, width):
    """The True entries of ``mask`` (B, N), row by row, as padded (B, width) column indices.

    Returns
    -------
    index : (B, width) int64
        Row b's columns in increasing order, then 0 (padding).
    valid : (B, width) bool
        False on the padding.
    rows, columns : (P,) int64
        The P True entries of ``mask`` in row-major order, the order of ``index[valid]``.
    """
    import torch

    rows, columns = torch.nonzero(mask, as_tuple=True)  # row-major: each row's columns in increasing order
    counts = mask.sum(dim=1)
    first = torch.cumsum(counts, dim=0) - counts
    position = torch.arange(rows.shape[0], device=mask.device) - first[rows]
    index = torch.zeros((mask.shape[0], width), dtype=torch.int64, device=mask.device)
    valid = torch.zeros((mask.shape[0], width), dtype=torch.bool, device=mask.device)
    index[rows, position] = columns
    valid[rows, position] = True
    return index, valid, rows, columns


def _m_step(X, resp, buffers, *, normalise_weights):
    """Weights (K,), means (K, d), covariances (K, d, d) and their lower Cholesky factors (both written into
    ``buffers``) from responsibilities ``resp`` (K, N): scikit-learn's ``_estimate_gaussian_parameters`` (counts
    plus 10 eps, weighted centred covariances plus ``reg_covar`` on the diagonal) over each component's rows with
    a non-zero responsibility, and ``_compute_precision_cholesky``'s factorisation."""
    import torch

    n_components, n_samples = resp.shape
    n_features = X.shape[1]
    covariances, factors = buffers
    eps10 = 10 * np.finfo(np.float64).eps
    counts = torch.full((n_components,), eps10, dtype=torch.float64, device=X.device)
    means = torch.zeros((n_components, n_features), dtype=torch.float64, device=X.device)
    # An empty component keeps a zero mean and the floor alone as its covariance, as in scikit-learn.
    covariances.zero_()
    held = resp > 0
    for start, stop, width, _ in _blocks(held.sum(dim=1), 2 * 8 * n_features, n_samples):
        index, valid, _, _ = _padded_pairs(held[start:stop], width)
        weight = torch.where(valid, resp[start:stop].gather(1, index), 0.0)  # (B, m): 0 on the padding
        rows = X[index]  # (B, m, d)
        count = weight.sum(dim=1) + eps10
        mean = (weight[:, None, :] @ rows)[:, 0] / count[:, None]
        scaled = (rows - mean[:, None, :]) * weight.sqrt()[:, :, None]
        counts[start:stop] = count
        means[start:stop] = mean
        torch.matmul(scaled.mT, scaled, out=covariances[start:stop])
        covariances[start:stop] /= count[:, None, None]
    covariances.diagonal(dim1=-2, dim2=-1).add_(host.REG_COVAR)
    info = torch.empty(n_components, dtype=torch.int32, device=X.device)
    # On the transposed views: LAPACK reads each covariance's lower triangle as the upper one of its column-major
    # transpose and writes U = L^T column-major, i.e. L row-major, into ``factors``, with no copy either way
    # (twice as fast on CPU torch as the plain call at K = 200, d = 314).
    torch.linalg.cholesky_ex(covariances.mT, upper=True, out=(factors.mT, info))
    # A covariance with an infinite or NaN entry fails the factorisation, or (+inf on the diagonal alone) leaves a
    # non-finite diagonal in its factor: checked on the K x d diagonals, not on the K x d x d entries.
    failed = (info != 0) | ~torch.isfinite(factors.diagonal(dim1=-2, dim2=-1)).all(dim=1)
    if bool(failed.any()):
        component = int(torch.nonzero(failed)[0])
        if not bool(torch.isfinite(covariances[component]).all()):
            raise MixtureFitError(f"the covariance of component {component} is not finite")
        raise MixtureFitError(f"the covariance of component {component} is not positive definite")
    weights = counts / counts.sum() if normalise_weights else counts / n_samples
    return weights, means, covariances, factors


def _e_step(X, params, sketch):
    """(log p(x_i) (N,), responsibilities (K, N), share of the K x N pairs evaluated), as the host fit's E-step:
    every pair without ``sketch``; with it, each sample's most promising component first, then the pairs whose
    upper bound lies within ``PRUNE_MARGIN`` of that exact value (the others keep log-density -inf)."""
    import torch

    weights, means, _, factors = params
    n_components, n_features = means.shape
    n_samples = X.shape[0]
    log_det = -torch.log(factors.diagonal(dim1=-2, dim2=-1)).sum(dim=1)  # log det of P_k = L_k^{-T}
    offsets = log_det + torch.log(weights)
    constant = n_features * host.LOG_2PI
    log_prob = torch.full((n_components, n_samples), -math.inf, dtype=torch.float64, device=X.device)

    def evaluate(mask):
        """Exact log-densities of the pairs in ``mask`` (K, N), written into ``log_prob``."""
        for start, stop, width, every_pair in _blocks(mask.sum(dim=1), 2 * 8 * n_features, n_samples):
            if every_pair:  # every component of the block evaluates every sample: no gather
                centred = X[None, :, :] - means[start:stop, None, :]
            else:
                index, valid, component, columns = _padded_pairs(mask[start:stop], width)
                centred = X[index] - means[start:stop, None, :]  # (B, m, d)
            solved = torch.linalg.solve_triangular(factors[start:stop], centred.mT, upper=False)  # L^{-1} (x - mu)
            values = offsets[start:stop, None] - 0.5 * (constant + (solved * solved).sum(dim=1))
            if every_pair:
                log_prob[start:stop] = values
            else:
                # values[valid] lists the pairs in the mask's row-major order, as (component, columns) do.
                log_prob[start + component, columns] = values[valid]

    if sketch is None:
        evaluate(torch.ones((n_components, n_samples), dtype=torch.bool, device=X.device))
        evaluated = 1.0
    else:
        upper = _upper_bounds(X, means, factors, sketch, offsets, constant)
        samples = torch.arange(n_samples, device=X.device)
        best = torch.argmax(upper, dim=0)
        first = torch.zeros_like(upper, dtype=torch.bool)
        first[best, samples] = True
        evaluate(first)
        survivors = upper >= (log_prob[best, samples] - host.PRUNE_MARGIN)
        survivors[best, samples] = False
        evaluate(survivors)
        evaluated = (n_samples + int(survivors.sum().item())) / (n_components * n_samples)
    log_norm = torch.logsumexp(log_prob, dim=0)
    return log_norm, torch.exp(log_prob - log_norm), evaluated


def _upper_bounds(X, means, factors, sketch, offsets, constant):
    """(K, N) upper bounds of every pair's log-density ``offsets[k] - (constant + m_ik) / 2``: the Mahalanobis
    term ``m_ik`` is bounded below by ``||(x_i - mu_k) P_k U||^2``, ``P_k = L_k^{-T}`` (the host fit's bound)."""
    import torch

    n_components, n_features = means.shape
    rank = sketch.shape[1]
    # L_k^T Z_k = U for every component at once.
    projected = torch.linalg.solve_triangular(factors.mT, sketch.expand(n_components, n_features, rank), upper=True)
    columns = projected.permute(1, 0, 2).reshape(n_features, n_components * rank)
    projected_means = (means[:, None, :] @ projected)[:, 0]  # (K, r)
    bounds = torch.empty((n_components, X.shape[0]), dtype=torch.float64, device=X.device)
    step = max(64, BLOCK_BYTES // (8 * n_components * rank))
    for start in range(0, X.shape[0], step):
        block = (X[start:start + step] @ columns).reshape(-1, n_components, rank) - projected_means
        bounds[:, start:start + step] = (block * block).sum(dim=2).T
    bounds *= 1.0 - host.BOUND_SHRINK
    return offsets[:, None] - 0.5 * (constant + bounds)
