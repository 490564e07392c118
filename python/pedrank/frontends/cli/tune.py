"""``pedrank tune``: choose PED's options on benchmark datasets, leave-one-dataset-out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pedrank.frontends.cli.common import EXIT_OK, UsageError, progress_flag, write_text


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``tune`` subcommand's arguments."""
    p = commands.add_parser(
        "tune", parents=parents, help="choose PED's options on benchmark datasets (leave-one-dataset-out)",
        description="Score several benchmark pools at every setting of a grid of PED options (and PED off), choose "
                    "the setting per score by mean weighted tau, report it leave-one-dataset-out, and write the "
                    "chosen settings for `pedrank rank --ped-config`. The grid is the product of the values of "
                    "--radius, --elastic, --time-step, --exit-ratio and --max-steps; an option not given keeps its "
                    "default, so --radius 0.3 alone tries radius 0.3 with every default elastic (6 PED settings, "
                    "and off).")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a folder of pools (authors' layout {model}_{dataset}_feature.npy, or the zoo cache's "
                        "{dataset}__{model}.npz), or NAME=PATH for one dataset's pool")
    p.add_argument("--truth", action="append", required=True, metavar="CSV",
                   help="ground truth as `pedrank evaluate --truth` reads it: a CSV with one column per dataset, "
                        "or NAME=CSV for one dataset (repeatable). A file's column serves one dataset only: a "
                        "single-column file is read for a dataset when its column is named after it or generically "
                        "(accuracy, acc, top1, ...), never for two datasets")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help="a score to tune (repeatable; 'all' for every feature score; default logme sfda gbc nleep)")
    # The defaults as pedrank.workflow.tune.settings states them (DEFAULT_GRID, PED_DEFAULTS; a test keeps them
    # equal), written out so that building the parser imports nothing.
    for option, default in (("radius", "0.3,0.6,1.0"), ("elastic", "0.6,0.8,1.0,1.2,1.5,2.0"),
                            ("time-step", "PED's, 0.1"), ("exit-ratio", "PED's, 0.5"), ("max-steps", "PED's, 6")):
        p.add_argument(f"--{option}", metavar="LIST", help=f"comma-separated values to try (default {default})")
    p.add_argument("--dataset", action="append", metavar="NAME", help="tune on these datasets only (repeatable)")
    p.add_argument("--no-off", action="store_true", help="leave 'PED off' out of the candidates")
    p.add_argument("--cache", metavar="DIR", help="keep the scores in DIR/tune_scores.json and reuse them")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "torch"))
    p.add_argument("-o", "--output", metavar="FILE", help="write the settings chosen on all datasets (JSON)")
    p.add_argument("--json", metavar="OUT", help="write the full report as JSON ('-' for stdout)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``pedrank tune``; returns the exit status."""
    from pedrank.workflow.tune import tune
    from pedrank.workflow.tune.settings import DEFAULT_GRID

    # Every option keeps the default its --help states unless given: --radius 0.3 alone still tries every elastic
    # of the default grid (the others: PED's value).
    grid: dict[str, list[Any]] = {option: list(values) for option, values in DEFAULT_GRID.items()}
    for option in ("radius", "elastic", "time_step", "exit_ratio", "max_steps"):
        text = getattr(args, option)
        if text is None:
            continue
        try:
            values = [int(v) if option == "max_steps" else float(v) for v in text.split(",") if v.strip()]
        except ValueError as exc:
            raise UsageError(f"--{option.replace('_', '-')}: expected comma-separated numbers, found {text!r}") from exc
        if not values:
            raise UsageError(f"--{option.replace('_', '-')}: expected comma-separated numbers, found {text!r}")
        grid[option] = values
    truth: Any = [t for t in args.truth if "=" not in t or Path(t).exists()]
    named = dict(t.split("=", 1) for t in args.truth if "=" in t and not Path(t).exists())
    if named and truth:
        raise UsageError("--truth: give either per-dataset NAME=CSV files or CSVs with one column per dataset")
    metrics: Any = args.metric
    if metrics and "all" in metrics:
        metrics = "all"
    from pedrank.workflow.tune import find_datasets

    datasets = find_datasets(args.sources)
    if args.dataset:
        unknown = sorted(set(args.dataset) - set(datasets))
        if unknown:
            raise UsageError(f"--dataset {', '.join(unknown)}: not found; datasets found: {sorted(datasets)}")
        datasets = {d: datasets[d] for d in args.dataset}
    result = tune(datasets, named or truth, metrics=metrics, grid=grid, off=not args.no_off,
                  backend=args.backend, cache=args.cache, progress=progress_flag(args))
    if args.output:
        result.write_config(args.output)
    if args.json:
        write_text(args.json, result.to_json())
    if args.json != "-":
        print(result.to_string())
        if args.output:
            print(f"settings written to {args.output}")
    return EXIT_OK
