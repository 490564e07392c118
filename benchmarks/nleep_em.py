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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["2000x256x20"], help="N x D x C, e.g. 2000x256x20")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for every call")
    parser.add_argument("--end-to-end", action="store_true", help="also time pedrank.nleep against the reference")
    parser.add_argument("--pedrank-only", action="store_true",
                        help="time pedrank alone (shapes where scikit-learn takes many minutes)")
    parser.add_argument("--json", help="write the raw measurements here")
    args = parser.parse_args()

    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    import pedrank
    from pedrank import reference
    from pedrank._engine.mixture import fit_gaussian_mixture

    # One small fit each first: imports and first-call setup (k-means' thread pools) are not what is measured.
    warm = np.random.default_rng(0).normal(size=(200, 40))
    GaussianMixture(n_components=10, covariance_type="full", random_state=0).fit(warm).predict_proba(warm)
    fit_gaussian_mixture(warm, 10, random_state=0)

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
            if args.end_to_end:
                new_s, _, new_value = best_of(lambda: pedrank.nleep(features, labels), args.repeat)
                row.update(nleep_pedrank_s=new_s, nleep_value=new_value)
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
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                       "repeat": args.repeat, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
