"""``pedrank evaluate``: a ranking's scores against ground-truth accuracies, beside trivial baselines."""

from __future__ import annotations

import argparse
import json

from pedrank._engine.validation import with_context
from pedrank.frontends.cli.common import EXIT_OK, UsageError, baseline_source, read_truth_option, write_text


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``evaluate`` subcommand's arguments."""
    p = commands.add_parser("evaluate", parents=parents, help="compare scores with ground-truth accuracies",
                            description="Weighted Kendall tau, Kendall tau, Pearson and top-k relative accuracy of "
                                        "the scores, beside the same metrics of trivial baselines: truth columns "
                                        "params, source_accuracy and baseline_NAME, --baseline files, and random "
                                        "rankings (mean +- std).")
    p.add_argument("scores", metavar="SCORES", help="the JSON (or CSV) that `pedrank rank` wrote")
    p.add_argument("--truth", metavar="CSV",
                   help="CSV with a model column and either one accuracy column per dataset or a single accuracy "
                        "column (used for the dataset when it is named after it or generically: accuracy, acc, "
                        "top1, ...; a column named after another dataset is refused); empty cells and placeholders "
                        "(-, n/a) are no value; columns params, source_accuracy and baseline_NAME are baselines "
                        "(default: the PED paper's fine-tune accuracies). Accuracies are fractions (0.85) or "
                        "percentages (85 or 85%%), one scale per column: a column mixing values below 1 with "
                        "values above 1 or written with %% is refused (0 and 1 fit both; write a percentage below 1 "
                        "as 0.5%%), as are values outside [0, 100] and the same accuracy for every scored model")
    p.add_argument("--dataset", help="the truth column (default: the scores' dataset; a file with a single "
                                     "accuracy column: that column, if its name fits the dataset)")
    p.add_argument("--top-k", type=int, nargs="+", default=[1, 3], metavar="K")
    p.add_argument("--baseline", action="append", type=baseline_source, default=[], metavar="NAME=CSV",
                   help="a baseline judged like the score: a CSV of models and one value each (higher = predicted "
                        "better), e.g. params=sizes.csv (repeatable; overrides a truth column of that name)")
    p.add_argument("--random", type=int, default=1000, metavar="N",
                   help="also judge N seeded random rankings, mean +- std (default 1000; 0 turns it off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random rankings (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the metrics as JSON ('-' for stdout)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``pedrank evaluate``; returns the exit status."""
    from pedrank.workflow.evaluate import evaluate, read_baseline
    from pedrank.workflow.io import read_scores

    if args.random < 0:
        raise UsageError(f"--random {args.random}: expected a number of rankings >= 0")
    scores, info = read_scores(args.scores)
    truth, dataset = read_truth_option(args, info)
    # the scores file's baseline columns (rank --baseline), then the truth file's, then --baseline: later wins
    baselines = {**info.get("baselines", {}), **truth.baselines}
    for name, path in args.baseline:
        baselines[name] = read_baseline(path, name)
    try:
        # the Truth itself, not its dict: errors then name the truth file and column, and 80% cells keep their scale
        result = evaluate(scores, truth, top_k=args.top_k, baselines=baselines,
                          random_rankings=args.random, seed=args.seed)
    except ValueError as exc:
        raise with_context(exc, str(args.scores)) from exc
    values = result.to_dict()
    if args.json:
        write_text(args.json, json.dumps(values, indent=2))
    if args.json != "-":
        print(f"{args.scores} against {truth.path}, column {truth.column!r}"
              + (f" (dataset {dataset})" if dataset and dataset != truth.column else ""))
        print(result.to_string())
    return EXIT_OK
