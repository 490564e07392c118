"""``pedrank plot ped|scores|ranking|finetune``: the figures, as PNG files (pedrank.frontends.plot draws them)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from pedrank._engine.validation import with_context
from pedrank.frontends.cli.common import EXIT_OK, add_ped_arguments, ped_options, truth_accuracies


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``plot`` subcommand and its kinds' arguments."""
    p = commands.add_parser("plot", parents=parents,
                            help="draw a PED run, a ranking with its intervals or a score-vs-accuracy scatter (PNG)")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    q = kinds.add_parser("ped", parents=parents, help="class means before/after PED (2-D PCA) and the energy per step",
                         description="Run PED on one model's features and draw it.")
    q.add_argument("features", metavar="FILE", help="{model}_{dataset}_feature.npy, .npz or .pt")
    q.add_argument("--labels", metavar="NPY", help="labels for a plain .npy")
    q.add_argument("--reference", metavar="PATH", help="PED's reference statistics")
    add_ped_arguments(q, flag=False)
    q.add_argument("-o", "--output", default="ped.png", metavar="PNG")
    q.set_defaults(handler=run_ped)
    q = kinds.add_parser("scores", parents=parents, help="scores against accuracies, one point per model",
                         description="Scatter the scores of `pedrank rank --json` against ground-truth accuracies.")
    q.add_argument("scores", metavar="SCORES")
    q.add_argument("--truth", metavar="CSV", help="as for `pedrank evaluate`")
    q.add_argument("--dataset")
    q.add_argument("-o", "--output", default="scores.png", metavar="PNG")
    q.set_defaults(handler=run_scores)
    q = kinds.add_parser("ranking", parents=parents, help="scores with their bootstrap intervals, best first",
                         description="Draw the ranking that `pedrank rank --json` wrote: each model's score with its "
                                     "5th-95th percentile bootstrap interval (--confidence) and P(best), best first; "
                                     "with several metrics one panel per metric and the matrix of their Kendall "
                                     "taus.")
    q.add_argument("ranking", metavar="FILE", help="the JSON (or, for one metric, the CSV) of `pedrank rank`")
    q.add_argument("-o", "--output", default="ranking.png", metavar="PNG")
    q.set_defaults(handler=run_ranking)
    q = kinds.add_parser("finetune", parents=parents,
                         help="weighted tau against accuracy after t fine-tuning iterations, and a scatter",
                         description="Left: weighted tau of each score (with and without PED) against the test "
                                     "accuracy after t iterations of the chosen setting (the PED paper's supp. "
                                     "Fig. 3). Right: scores against fine-tuned accuracy.")
    q.add_argument("curves", metavar="CURVES", help="the long CSV of `pedrank finetune --curves`")
    q.add_argument("--scores", required=True, metavar="CSV",
                   help="long CSV with columns dataset, model, metric, ped (0/1), score")
    q.add_argument("--metric", help="the score of the scatter (default: the first in SCORES)")
    q.add_argument("-o", "--output", default="finetune.png", metavar="PNG")
    q.set_defaults(handler=run_finetune)


def run_ped(args: argparse.Namespace) -> int:
    """Run ``pedrank plot ped``; returns the exit status."""
    from pedrank.frontends.plot import plot_ped
    from pedrank.workflow.io import load_features, load_reference

    features, labels = load_features(args.features, args.labels)
    reference = None if args.reference is None else load_reference(args.reference)
    try:
        result = plot_ped(features, labels, args.output, reference=reference, title=Path(args.features).name,
                          **ped_options(args))
    except ValueError as exc:
        raise with_context(exc, str(args.features)) from exc
    energies = ", ".join(f"{e:.4g}" for e in result.energies)
    print(f"{args.output}: {result.steps} PED step(s); potential energy per step: {energies}")
    return EXIT_OK


def run_scores(args: argparse.Namespace) -> int:
    """Run ``pedrank plot scores``; returns the exit status."""
    from pedrank.frontends.plot import plot_scores
    from pedrank.workflow.io import read_scores

    scores, info = read_scores(args.scores)
    truth, dataset = truth_accuracies(args, info)
    metric = info.get("metric", "score")
    try:
        evaluation = plot_scores(scores, truth, args.output, score_label=f"{metric} score",
                                 accuracy_label=f"accuracy on {dataset}" if dataset else "accuracy",
                                 title=dataset)
    except ValueError as exc:
        raise with_context(exc, str(args.scores)) from exc
    tau = evaluation.weighted_tau
    print(f"{args.output}: {evaluation.n_models} models, weighted tau {tau:.4f}" if not math.isnan(tau)
          else f"{args.output}: {evaluation.n_models} models")
    return EXIT_OK


def run_ranking(args: argparse.Namespace) -> int:
    """Run ``pedrank plot ranking``; returns the exit status."""
    from pedrank.frontends.plot import plot_ranking
    from pedrank.workflow.confidence import read_ranking

    ranking = read_ranking(args.ranking)
    drawn = plot_ranking(ranking, args.output)
    resamples = {table.n_resamples for table in drawn["tables"].values()} - {None}
    intervals = (f"intervals from {', '.join(map(str, sorted(resamples)))} resamples" if resamples
                 else "no intervals (rank with --confidence B for them)")
    print(f"{args.output}: {len(drawn['tables'])} metric(s), {len(drawn['models'])} models, {intervals}")
    return EXIT_OK


def run_finetune(args: argparse.Namespace) -> int:
    """Run ``pedrank plot finetune``; returns the exit status."""
    from pedrank.frontends.plot import plot_finetune
    from pedrank.workflow.finetune import read_curves, read_score_table

    curves = read_curves(args.curves)
    scores = read_score_table(args.scores)
    taus = plot_finetune(curves, scores, args.output, scatter_metric=args.metric)
    final = {label: values[-1] for label, values in taus["weighted_tau"].items()}
    text = ", ".join(f"{label} {value:+.3f}" for label, value in final.items())
    where = (f"iteration {taus['x'][-1]:g}" if taus["x_label"].startswith("fine-tuning iterations")
             else "the end of the runs")
    print(f"{args.output}: weighted tau (mean over {len(taus['datasets'])} dataset(s)) at {where}: {text}")
    return EXIT_OK
