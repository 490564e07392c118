"""NLEEP's Gaussian mixture: pedrank._mixture against scikit-learn's GaussianMixture, same inputs, same run.

    nice -n 5 python benchmarks/nleep_em.py --shapes 2000x256x20 4000x512x40 --end-to-end --json out.json

For each N x D x C: the benchmark features (benchmarks/_data.py, float32, fixed seed) go through NLEEP's PCA
(scikit-learn, 80 % of the variance, float64), then both fits run on the same reduced features with K = 5 C
components: ``GaussianMixture(n_components=K, covariance_type="full", random_state=0).fit(R)`` followed by
``predict_proba(R)`` (what NLEEP did), and ``pedrank._engine.mixture.fit_gaussian_mixture(R, K, random_state=0)``.
``--end-to-end`` also times the whole scores, ``pedrank.reference.nleep`` (scikit-learn's mixture) against
``pedrank.nleep``. Every call runs ``--repeat`` times, alternating, on ``--threads`` BLAS threads (default 1: NLEEP's
thread policy gives calls under 2e6 feature entries one thread, and one thread is what a shared machine measures
reproducibly); the best time is reported. k-means initialises both fits and is timed in both.
Prints a Markdown table (and writes the raw numbers with ``--json``).

``--torch`` also times the torch path on CPU torch (``pedrank._engine.mixture_torch``), in the same process: its fit
on a tensor of the same reduced features, on ``--threads`` torch threads, and (with ``--end-to-end``) the whole
score on a tensor of the features, ``pedrank.nleep(torch.as_tensor(features), labels)`` against
``pedrank.nleep(features, labels)`` (both on the thread policy), with the differences of values and posteriors.

``--floors`` measures issue 26's BLAS-3 floor on the same shapes, one BLAS thread per ``--threads``: the dense
floor, K products of an (N, d) by a (d, d) float64 matrix (N d^2 multiply-adds per component) per pass, and the
Cholesky floor, K ``dpotrf`` of a d x d SPD matrix per pass, each multiplied by the passes the fit made
(``n_iter + 1``: the k-means M-step and ``n_iter`` EM iterations, each an E-step and an M-step; the last E-step
gives the posteriors). ``--floor-sample S`` times S of the K identical products and scales by K / S (the products
all have the same shape and cost; at 10,000 x 1,024 all 500 would take minutes per pass).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from threadpoolctl import threadpool_limits

from _data import make_features  # benchmarks/ is the script's folder, first on sys.path


def parse_shape(text):
    n_samples, n_features, n_classes = (int(part) for part in text.lower().split("x"))
    return n_samples, n_features, n_classes


def best_of(call, repeat):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - start)
    return min(times), times, value


def dense_floor(n_samples, n_features, n_components, sample):
    """Seconds of the K products (N, d) x (d, d) in float64 (timed for ``min(sample, K)`` of them, scaled to K)."""
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((n_samples, n_features))
    square = rng.standard_normal((n_features, n_features))
    out = np.empty((n_samples, n_features))
    np.matmul(rows, square, out=out)  # warm
    timed = min(sample, n_components) if sample else n_components
    start = time.perf_counter()
    for _ in range(timed):
        np.matmul(rows, square, out=out)
    return (time.perf_counter() - start) * n_components / timed, timed


def cholesky_floor(n_features, n_components):
    """Seconds of K Cholesky factorisations (LAPACK ``dpotrf``) of a d x d SPD matrix."""
    from scipy.linalg.lapack import dpotrf

    rng = np.random.default_rng(2)
    gram = rng.standard_normal((n_features, n_features))
    spd = gram @ gram.T / n_features + np.eye(n_features)
    dpotrf(spd, lower=1)  # warm
    start = time.perf_counter()
    for _ in range(n_components):
        dpotrf(spd, lower=1)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["2000x256x20"], help="N x D x C, e.g. 2000x256x20")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for every call")
    parser.add_argument("--end-to-end", action="store_true", help="also time pedrank.nleep against the reference")
    parser.add_argument("--pedrank-only", action="store_true",
                        help="time pedrank alone (shapes where scikit-learn takes many minutes)")
    parser.add_argument("--torch", action="store_true", help="also time the torch path on CPU torch")
    parser.add_argument("--floors", action="store_true", help="measure the dense and the Cholesky BLAS-3 floors")
    parser.add_argument("--floor-sample", type=int, default=0,
                        help="time this many of the K dense products and scale to K (0: all K)")
    parser.add_argument("--json", help="write the raw measurements here")
    args = parser.parse_args()

    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    import pedrank
    from pedrank import reference
    from pedrank._engine.mixture import fit_gaussian_mixture, kmeans_labels
    from pedrank._engine.mixture_torch import fit_gaussian_mixture_torch
    from pedrank.scores.nleep import mixture_posteriors

    settings = {"components_per_class": 5, "variance_kept": 0.8, "random_state": 0}

    # One small fit each first: imports and first-call setup (k-means' thread pools) are not what is measured.
    warm = np.random.default_rng(0).normal(size=(200, 40))
    GaussianMixture(n_components=10, covariance_type="full", random_state=0).fit(warm).predict_proba(warm)
    fit_gaussian_mixture(warm, 10, random_state=0)
    if args.torch:
        import torch

        fit_gaussian_mixture_torch(torch.as_tensor(warm), 10, random_state=0)

    rows = []
    for text in args.shapes:
        n_samples, n_features, n_classes = parse_shape(text)
        features, labels = make_features(n_samples, n_features, n_classes)
        reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(features.astype(np.float64))
        n_components = min(5 * n_classes, n_samples)
        row = {"shape": [n_samples, n_features, n_classes], "pca_dim": reduced.shape[1], "components": n_components}
        with threadpool_limits(limits=args.threads, user_api="blas"):
            def scikit():
                mixture = GaussianMixture(n_components=n_components, covariance_type="full", random_state=0)
                return mixture.fit(reduced), mixture.predict_proba(reduced)

            def ours():
                return fit_gaussian_mixture(reduced, n_components, random_state=0)

            ours_s, ours_all, fit = best_of(ours, args.repeat)
            row.update(pedrank_s=ours_s, pedrank_all=ours_all, n_iter=fit.n_iter,
                       nonzero_posteriors=float(np.mean(fit.posteriors > 0)))
            if not args.pedrank_only:
                scikit_s, scikit_all, (mixture, posteriors) = best_of(scikit, args.repeat)
                row.update(
                    scikit_s=scikit_s, scikit_all=scikit_all, ratio=scikit_s / ours_s,
                    scikit_n_iter=int(mixture.n_iter_),
                    max_abs_posterior_diff=float(np.abs(fit.posteriors - posteriors).max()),
                    lower_bound_rel_diff=abs(fit.lower_bound - mixture.lower_bound_) / abs(mixture.lower_bound_),
                )
            if args.torch:
                tensor = torch.as_tensor(reduced)
                pedrank.set_threads(args.threads)  # torch's CPU threads follow pedrank's policy: fix them
                try:
                    torch_s, torch_all, torch_fit = best_of(
                        lambda: fit_gaussian_mixture_torch(tensor, n_components, random_state=0), args.repeat)
                finally:
                    pedrank.set_threads(0)
                row.update(torch_fit_s=torch_s, torch_fit_all=torch_all, torch_n_iter=torch_fit.n_iter,
                           torch_over_pedrank=torch_s / ours_s,
                           torch_max_abs_posterior_diff=float(np.abs(torch_fit.posteriors.numpy()
                                                                     - fit.posteriors).max()),
                           torch_lower_bound_rel_diff=abs(torch_fit.lower_bound - fit.lower_bound)
                           / abs(fit.lower_bound))
            if args.floors:
                passes = fit.n_iter + 1
                dense_s, timed = dense_floor(n_samples, reduced.shape[1], n_components, args.floor_sample)
                chol_s = cholesky_floor(reduced.shape[1], n_components)
                # Both fits start with the same scikit-learn k-means, which no floor counts: timed alone.
                kmeans_s, _, _ = best_of(lambda: kmeans_labels(reduced, n_components, 0), 1)
                em_s = ours_s - kmeans_s
                row.update(passes=passes, dense_pass_s=dense_s, dense_timed_products=timed,
                           cholesky_pass_s=chol_s, dense_floor_s=passes * dense_s,
                           cholesky_floor_s=passes * chol_s, kmeans_s=kmeans_s, pedrank_em_s=em_s,
                           pedrank_over_dense=ours_s / (passes * dense_s),
                           pedrank_over_cholesky=ours_s / (passes * chol_s),
                           pedrank_em_over_dense=em_s / (passes * dense_s),
                           pedrank_em_over_cholesky=em_s / (passes * chol_s))
                if args.torch:
                    row.update(torch_over_dense=row["torch_fit_s"] / (passes * dense_s),
                               torch_em_over_dense=(row["torch_fit_s"] - kmeans_s) / (passes * dense_s),
                               torch_em_over_cholesky=(row["torch_fit_s"] - kmeans_s) / (passes * chol_s))
            if args.end_to_end:
                new_s, _, new_value = best_of(lambda: pedrank.nleep(features, labels), args.repeat)
                row.update(nleep_pedrank_s=new_s, nleep_value=new_value)
                if args.torch:
                    on_torch = torch.as_tensor(features)
                    torch_e2e_s, _, torch_value = best_of(lambda: pedrank.nleep(on_torch, labels), args.repeat)
                    host_post = mixture_posteriors(features.astype(np.float64), n_classes, **settings)
                    torch_post = mixture_posteriors(on_torch.to(torch.float64), n_classes, **settings)
                    row.update(nleep_torch_s=torch_e2e_s, nleep_torch_value=torch_value,
                               nleep_torch_over_pedrank=torch_e2e_s / new_s,
                               nleep_torch_rel_diff=abs(torch_value - new_value) / abs(new_value),
                               nleep_torch_max_abs_posterior_diff=float(np.abs(torch_post.numpy()
                                                                               - host_post).max()))
                if not args.pedrank_only:
                    ref_s, _, ref_value = best_of(lambda: reference.nleep(features, labels), args.repeat)
                    row.update(nleep_reference_s=ref_s, nleep_ratio=ref_s / new_s,
                               nleep_rel_diff=abs(new_value - ref_value) / abs(ref_value))
        rows.append(row)
        print(json.dumps(row), flush=True)

    def cell(row, key, form):
        return format(row[key], form) if key in row else "-"

    print()
    print("| shape (N, D, C) | PCA dim | K | EM iterations | scikit-learn s | pedrank s | ratio "
          "| max abs posterior diff | NLEEP reference s | NLEEP pedrank s | NLEEP ratio | NLEEP rel. diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cells = [str(tuple(row["shape"])), str(row["pca_dim"]), str(row["components"]), str(row["n_iter"]),
                 cell(row, "scikit_s", ".2f"), cell(row, "pedrank_s", ".2f"), cell(row, "ratio", ".1f"),
                 cell(row, "max_abs_posterior_diff", ".1e"), cell(row, "nleep_reference_s", ".2f"),
                 cell(row, "nleep_pedrank_s", ".2f"), cell(row, "nleep_ratio", ".1f"),
                 cell(row, "nleep_rel_diff", ".1e")]
        print("| " + " | ".join(cells) + " |")
    if args.torch or args.floors:
        print()
        print("| shape (N, D, C) | PCA dim | K | passes | k-means s | pedrank fit s | torch fit s | torch / pedrank "
              "| dense floor s | Cholesky floor s | pedrank / dense | pedrank EM / dense | pedrank EM / Cholesky "
              "| torch EM / dense | torch EM / Cholesky |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            cells = [str(tuple(row["shape"])), str(row["pca_dim"]), str(row["components"]),
                     cell(row, "passes", "d"), cell(row, "kmeans_s", ".2f"), cell(row, "pedrank_s", ".2f"),
                     cell(row, "torch_fit_s", ".2f"), cell(row, "torch_over_pedrank", ".2f"),
                     cell(row, "dense_floor_s", ".2f"), cell(row, "cholesky_floor_s", ".2f"),
                     cell(row, "pedrank_over_dense", ".2f"), cell(row, "pedrank_em_over_dense", ".2f"),
                     cell(row, "pedrank_em_over_cholesky", ".2f"), cell(row, "torch_em_over_dense", ".2f"),
                     cell(row, "torch_em_over_cholesky", ".2f")]
            print("| " + " | ".join(cells) + " |")
    if args.torch and args.end_to_end:
        print()
        print("| shape (N, D, C) | NLEEP pedrank s | NLEEP torch (CPU) s | torch / pedrank | NLEEP value "
              "| NLEEP rel. diff | max abs posterior diff | fit: max abs posterior diff | fit: lower bound rel. diff |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            cells = [str(tuple(row["shape"])), cell(row, "nleep_pedrank_s", ".2f"), cell(row, "nleep_torch_s", ".2f"),
                     cell(row, "nleep_torch_over_pedrank", ".2f"), cell(row, "nleep_value", ".6f"),
                     cell(row, "nleep_torch_rel_diff", ".1e"), cell(row, "nleep_torch_max_abs_posterior_diff", ".1e"),
                     cell(row, "torch_max_abs_posterior_diff", ".1e"), cell(row, "torch_lower_bound_rel_diff", ".1e")]
            print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                       "repeat": args.repeat, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
