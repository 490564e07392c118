"""``pedrank demo``: a small real model-selection problem on scikit-learn's digits (pedrank.frontends.demo)."""

from __future__ import annotations

import argparse

from pedrank.frontends.cli.common import EXIT_OK, add_ped_arguments, check_metric, metrics, ped_options, progress_flag


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``demo`` subcommand's arguments."""
    p = commands.add_parser("demo", parents=parents, help="a small real model-selection problem (digits), no download",
                            description="Rank a dozen feature extractors on scikit-learn's digits, against a "
                                        "logistic-regression probe's accuracy, with and without PED.")
    p.add_argument("--output-dir", default="pedrank-demo", metavar="DIR", help="where the plots go")
    p.add_argument("--metric", help="the metric whose tables are printed (default: the recommended score)")
    p.add_argument("--no-plots", action="store_true")
    add_ped_arguments(p, flag=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``pedrank demo``; returns the exit status."""
    from pedrank.frontends.demo import run_demo

    if args.metric is not None:
        check_metric(args.metric)
    run_demo(
        None if args.no_plots else args.output_dir,
        metric=args.metric,
        metrics=[m for m in ("logme", "sfda", "gbc") if m in metrics()],
        ped=ped_options(args) or True,
        plots=not args.no_plots,
        progress=progress_flag(args),
    )
    return EXIT_OK
