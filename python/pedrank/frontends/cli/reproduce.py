"""``pedrank reproduce``: the PED paper's weighted-tau table, recomputed from the authors' features."""

from __future__ import annotations

import argparse
import json
import sys

from pedrank.frontends.cli.common import (
    EXIT_OK,
    add_ped_arguments,
    check_metric,
    ped_options,
    progress_flag,
    write_text,
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``reproduce`` subcommand's arguments."""
    p = commands.add_parser("reproduce", parents=parents, help="recompute the PED paper's weighted-tau table",
                            description="For every paper (model, dataset) with features in FEATURE_DIR (authors' "
                                        "layout), score LogME, SFDA, GBC with and without PED and print the weighted "
                                        "tau next to the paper's.")
    p.add_argument("feature_dir", metavar="FEATURE_DIR")
    p.add_argument("--metrics", default="logme,sfda,gbc", help="comma-separated (default logme,sfda,gbc)")
    p.add_argument("--dataset", action="append", dest="datasets", metavar="NAME",
                   help="only this dataset (repeatable)")
    add_ped_arguments(p, flag=False)
    p.add_argument("--json", metavar="OUT", help="write the cells and every model's score as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``pedrank reproduce``; returns the exit status."""
    from pedrank.workflow.reproduce import reproduce

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for metric in metrics:
        check_metric(metric)
    result = reproduce(
        args.feature_dir, metrics=metrics, ped=ped_options(args) or True, datasets=args.datasets,
        progress=progress_flag(args),
    )
    if result.ignored:
        print(f"ignored (not a paper model/dataset): {', '.join(result.ignored)}", file=sys.stderr)
    print(result.to_string())
    if args.json:
        scores = [
            {"method": method, "dataset": dataset, "model": model, "score": value}
            for (method, dataset), by_model in result.scores.items()
            for model, value in by_model.items()
        ]
        payload = {"cells": result.to_records(), "scores": scores}
        write_text(args.json, json.dumps(payload, indent=2, default=lambda v: None))
    return EXIT_OK
