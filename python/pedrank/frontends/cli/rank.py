"""``pedrank rank``: score every model's features and print the pool ranked, best first."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pedrank.frontends.cli.common import (
    EXIT_OK,
    UsageError,
    add_confidence_arguments,
    add_ped_arguments,
    baseline_source,
    check_confidence_arguments,
    check_metric,
    metric_choice,
    metric_option,
    print_note,
    progress_flag,
    seed_choice,
    write_table,
)


def _model_path(text: str) -> tuple[str, str]:
    model, sep, path = text.partition("=")
    if not sep or not model or not path:
        raise argparse.ArgumentTypeError(f"expected MODEL=PATH, found {text!r}")
    return model, path


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``rank`` subcommand's arguments."""
    p = commands.add_parser("rank", parents=parents, help="score and rank a pool of models",
                            description="Score every model's features and print the pool ranked, best first.")
    p.add_argument("paths", nargs="+", metavar="DIR_OR_FILE",
                   help="directories or files: {model}_{dataset}_feature.npy (+ _label.npy), .npz, .pt")
    p.add_argument("--dataset", metavar="NAME",
                   help="in the authors' layout, the dataset to rank on: the files named {model}_NAME_feature.npy, "
                        "the model being everything before _NAME (NAME may hold underscores, e.g. oxford_pets). "
                        "Without it, a file's dataset is the longest known name its name ends with (the PED "
                        "paper's datasets, and oxford_pets, stanford_cars, stanford_dogs, fgvc_aircraft, ...), "
                        "else the part after the last '_' (a longer known name wins over NAME too: with --dataset "
                        "pets, vit_oxford_pets is on oxford_pets); needed when the folder holds several datasets")
    p.add_argument("--labels", metavar="NPY", help="labels shared by plain .npy feature files")
    p.add_argument("--metric", help="a name of pedrank.METRICS (logme, sfda, gbc, ...), or a named form such as "
                   "logme:exact (the quirk-free form; pedrank.scores.scoring.METRIC_NAMES lists them); several, "
                   "comma-separated (pactran,sfda,logme), score every model with each in one pass and print their "
                   "rank correlations and a consensus by mean rank (default: the recommended score and its PED "
                   "setting, README 'Which score should I use?')")
    p.add_argument("--option", action="append", type=metric_option, default=[], metavar="KEY=VALUE",
                   help="an option of the metric, e.g. shrinkage=0.1 (repeatable; with several metrics, it goes to "
                        "those that take it)")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "torch"))
    p.add_argument("--reference", action="append", type=_model_path, default=[], metavar="MODEL=PATH",
                   help="PED's reference statistics for a model (features .npy, or .npz with mean/std)")
    add_ped_arguments(p, flag=True)
    p.add_argument("--ped-config", metavar="FILE",
                   help="PED's setting for this metric from the JSON that `pedrank tune --output` wrote "
                        "(false there: no PED)")
    add_confidence_arguments(p)
    p.add_argument("--baseline", action="append", type=baseline_source, default=[], metavar="NAME=CSV",
                   help="a trivial ranker shown beside the score, e.g. params=sizes.csv or "
                        "source_accuracy=imagenet.csv (a CSV of models and one value each, higher = predicted "
                        "better; repeatable); written as baseline_NAME columns that `pedrank evaluate` judges "
                        "beside the score")
    p.add_argument("--json", metavar="OUT", help="write the records as JSON ('-' for stdout instead of the table)")
    p.add_argument("--csv", metavar="OUT", help="write the records as CSV ('-' for stdout instead of the table)")
    p.set_defaults(handler=run)


def _check_metrics(metrics: list[str], options: dict[str, Any]) -> None:
    """Several metrics: each known, and each option taken by at least one of them."""
    for metric in metrics:
        check_metric(metric)
    if len(set(metrics)) != len(metrics):
        raise UsageError(f"--metric {','.join(metrics)}: a metric is named twice")
    for key, value in options.items():
        takers = []
        for metric in metrics:
            try:
                check_metric(metric, {key: value})
                takers.append(metric)
            except UsageError:
                pass
        if not takers:
            raise UsageError(f"--option {key}: not an option of any of {', '.join(metrics)}")


def run(args: argparse.Namespace) -> int:
    """Run ``pedrank rank``; returns the exit status."""
    from pedrank.workflow.io import find_features, load_reference
    from pedrank.workflow.rank import rank

    metric, ped, note = metric_choice(args)
    metrics = [m.strip() for m in metric.split(",") if m.strip()]
    options = dict(args.option)
    if len(metrics) > 1 or "," in metric:
        _check_metrics(metrics, options)
    else:
        check_metric(metric, options)
    check_confidence_arguments(args)
    random_state = seed_choice(args, options)
    if args.reference and not ped:
        raise UsageError("--reference gives PED's statistics: add --ped")
    pool = find_features(args.paths, dataset=args.dataset, labels=args.labels)
    references = {}
    for model, path in args.reference:
        if model not in pool:
            raise UsageError(f"--reference {model}={path}: no model {model!r} in the pool ({', '.join(pool)})")
        references[model] = load_reference(path)
    datasets = {source.dataset for source in pool.values()}
    dataset = args.dataset or (datasets.pop() if len(datasets) == 1 else None)
    baselines = {}
    if args.baseline:
        from pedrank.workflow.evaluate import read_baseline

        for name, path in args.baseline:
            values = read_baseline(path, name)
            missing = [m for m in pool if m not in values]
            if missing:
                raise UsageError(f"--baseline {name}={path}: no value for the models {missing} of the pool")
            baselines[name] = values
    table = rank(
        pool,
        metric=metrics if len(metrics) > 1 or "," in metric else metric,
        ped=ped,
        backend=args.backend,
        references=references,
        dataset=dataset,
        progress=progress_flag(args),
        baselines=baselines or None,
        confidence=args.confidence,
        random_state=random_state,
        **options,
    )
    print_note(args, note)
    write_table(args, table)
    warning = table.separation_warning(args.separated)
    if warning:
        print(f"pedrank rank: warning: {warning}", file=sys.stderr)
    return EXIT_OK
