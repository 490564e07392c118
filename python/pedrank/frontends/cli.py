"""The ``pedrank`` command line: rank, select, evaluate, reproduce, finetune, plot, demo.

Exit status: 0 success; 2 bad usage or bad input (the message on stderr names the file and the reason);
1 the work could not be done for another reason (e.g. not enough memory, matplotlib missing). User errors never
print a Python traceback; set ``PEDRANK_DEBUG=1`` to see one anyway.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from pedrank._engine.validation import PedrankValueError, with_context

__all__ = ["main", "build_parser"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_KNOWN_METRICS = ("logme", "sfda", "gbc")


class UsageError(PedrankValueError):
    """A bad combination of command-line options (exit status 2)."""


def _metrics() -> tuple[str, ...]:
    try:
        import pedrank

        return tuple(pedrank.scores.scoring.METRIC_NAMES)
    except (ImportError, AttributeError):
        return _KNOWN_METRICS


def _metric_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, found {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip().replace("-", "_"), parsed


def _model_path(text: str) -> tuple[str, str]:
    model, sep, path = text.partition("=")
    if not sep or not model or not path:
        raise argparse.ArgumentTypeError(f"expected MODEL=PATH, found {text!r}")
    return model, path


def _baseline_source(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=CSV (e.g. params=sizes.csv), found {text!r}")
    return name.strip(), path


def _add_ped_arguments(parser: argparse.ArgumentParser, *, flag: bool) -> None:
    group = parser.add_argument_group("PED")
    if flag:
        group.add_argument("--ped", action="store_true", help="move the features with PED before scoring")
        group.add_argument("--no-ped", action="store_true",
                           help="score the features as they are (without --metric, the recommended default may "
                                "turn PED on)")
    group.add_argument("--radius", type=float, help="radius coefficient (default 0.6)")
    group.add_argument("--elastic", type=float, help="elastic coefficient k (default 1.0)")
    group.add_argument("--time-step", type=float, help="time step t (default 0.1)")
    group.add_argument("--exit-ratio", type=float, help="stop below this fraction of the first movement (default 0.5)")
    group.add_argument("--max-steps", type=int, help="most steps (default 6)")


def _ped_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("radius", "elastic", "time_step", "exit_ratio", "max_steps")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pedrank",
        description="Rank pre-trained models by transferability scores (LogME, SFDA, GBC, ..., with PED).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-progress", action="store_true", help="never show progress bars")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # rank
    p = commands.add_parser("rank", parents=[common], help="score and rank a pool of models",
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
    p.add_argument("--option", action="append", type=_metric_option, default=[], metavar="KEY=VALUE",
                   help="an option of the metric, e.g. shrinkage=0.1 (repeatable; with several metrics, it goes to "
                        "those that take it)")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "torch"))
    p.add_argument("--reference", action="append", type=_model_path, default=[], metavar="MODEL=PATH",
                   help="PED's reference statistics for a model (features .npy, or .npz with mean/std)")
    _add_ped_arguments(p, flag=True)
    p.add_argument("--ped-config", metavar="FILE",
                   help="PED's setting for this metric from the JSON that `pedrank tune --output` wrote "
                        "(false there: no PED)")
    _add_confidence_arguments(p)
    p.add_argument("--baseline", action="append", type=_baseline_source, default=[], metavar="NAME=CSV",
                   help="a trivial ranker shown beside the score, e.g. params=sizes.csv or "
                        "source_accuracy=imagenet.csv (a CSV of models and one value each, higher = predicted "
                        "better; repeatable); written as baseline_NAME columns that `pedrank evaluate` judges "
                        "beside the score")
    p.add_argument("--json", metavar="OUT", help="write the records as JSON ('-' for stdout instead of the table)")
    p.add_argument("--csv", metavar="OUT", help="write the records as CSV ('-' for stdout instead of the table)")
    p.set_defaults(handler=_run_rank)

    # tune
    p = commands.add_parser(
        "tune", parents=[common], help="choose PED's options on benchmark datasets (leave-one-dataset-out)",
        description="Score several benchmark pools at every setting of a grid of PED options (and PED off), choose "
                    "the setting per score by mean weighted tau, report it leave-one-dataset-out, and write the "
                    "chosen settings for `pedrank rank --ped-config`.")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="a folder of pools (authors' layout {model}_{dataset}_feature.npy, or the zoo cache's "
                        "{dataset}__{model}.npz), or NAME=PATH for one dataset's pool")
    p.add_argument("--truth", action="append", required=True, metavar="CSV",
                   help="ground truth as `pedrank evaluate --truth` reads it: a CSV with one column per dataset, "
                        "or NAME=CSV for one dataset (repeatable)")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help="a score to tune (repeatable; 'all' for every feature score; default logme sfda gbc nleep)")
    for option, default in (("radius", "0.3,0.6,1.0"), ("elastic", "0.6,0.8,1.0,1.2,1.5,2.0"), ("time-step", None),
                            ("exit-ratio", None), ("max-steps", None)):
        p.add_argument(f"--{option}", metavar="LIST",
                       help="comma-separated values" + (f" (default {default})" if default else " (default: PED's)"))
    p.add_argument("--dataset", action="append", metavar="NAME", help="tune on these datasets only (repeatable)")
    p.add_argument("--no-off", action="store_true", help="leave 'PED off' out of the candidates")
    p.add_argument("--cache", metavar="DIR", help="keep the scores in DIR/tune_scores.json and reuse them")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "torch"))
    p.add_argument("-o", "--output", metavar="FILE", help="write the settings chosen on all datasets (JSON)")
    p.add_argument("--json", metavar="OUT", help="write the full report as JSON ('-' for stdout)")
    p.set_defaults(handler=_run_tune)

    # select
    p = commands.add_parser(
        "select", parents=[common], help="extract features of models on a dataset, then score and rank them",
        description="Load every model (timm:NAME, torchvision:NAME, hf:NAME_OR_PATH, MODULE:CALLABLE, a checkpoint "
                    "file, ARCH@CHECKPOINT), extract its features on DATA with its own preprocessing (cached in "
                    "--cache in the authors' layout: a second run extracts nothing, an interrupted run resumes), "
                    "score and rank them. A model that fails gets a row saying why; the others are ranked.")
    p.add_argument("data", metavar="DATA", help="an image folder (a sub-folder per class), a Hugging Face datasets "
                                                "folder (save_to_disk), an .npz (images or inputs/features, and "
                                                "labels), a CSV of texts and labels")
    p.add_argument("models", nargs="+", metavar="MODEL", help="a model, or NAME=MODEL to name its row")
    p.add_argument("--metric", help="as for `pedrank rank` (e.g. logme, sfda, logme:exact; default: the recommended "
                   "score and its PED setting)")
    p.add_argument("--option", action="append", type=_metric_option, default=[], metavar="KEY=VALUE",
                   help="an option of the metric (repeatable)")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "torch"))
    _add_ped_arguments(p, flag=True)
    p.add_argument("--ped-config", metavar="FILE", help="PED's setting from `pedrank tune --output`")
    p.add_argument("--layers", metavar="all|NAME[,NAME...]",
                   help="'all' ranks every block of the (one) model; or comma-separated layer names / hf indices "
                        "(default: the input of the last nn.Linear; an hf model's last hidden state)")
    p.add_argument("--cache", metavar="DIR", help="feature cache directory (default: none)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps, ...")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help="the forward passes' dtype")
    p.add_argument("--pooling", default="mean", choices=("mean", "cls", "max", "flatten"),
                   help="of token/patch outputs and feature maps (default mean)")
    p.add_argument("--image-size", type=int, help="resize images to this size (overrides timm/torchvision's)")
    p.add_argument("--no-pretrained", action="store_true", help="timm/torchvision architectures without weights")
    p.add_argument("--max-samples", type=int, help="only the first N samples")
    p.add_argument("--dataset", help="the dataset's name (default: DATA's name)")
    p.add_argument("--text-column", help="the CSV's text column (default text, or the first)")
    p.add_argument("--label-column", help="the CSV's label column (default label, or the last)")
    _add_confidence_arguments(p)
    p.add_argument("--bad-images", default="raise", choices=("raise", "skip"),
                   help="an image file that cannot be read: raise (default: exit 2 naming it) or skip it, with its "
                        "label, for every model (a warning names the files skipped)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler (tcp://host:8786): one task per model on its workers")
    p.add_argument("--workers", type=int, metavar="N", help="run N models at a time in local processes")
    p.add_argument("--json", metavar="OUT", help="write the records as JSON ('-' for stdout instead of the table)")
    p.add_argument("--csv", metavar="OUT", help="write the records as CSV ('-' for stdout instead of the table)")
    p.set_defaults(handler=_run_select)

    # evaluate
    p = commands.add_parser("evaluate", parents=[common], help="compare scores with ground-truth accuracies",
                            description="Weighted Kendall tau, Kendall tau, Pearson and top-k relative accuracy of "
                                        "the scores, beside the same metrics of trivial baselines: truth columns "
                                        "params, source_accuracy and baseline_NAME, --baseline files, and random "
                                        "rankings (mean +- std).")
    p.add_argument("scores", metavar="SCORES", help="the JSON (or CSV) that `pedrank rank` wrote")
    p.add_argument("--truth", metavar="CSV",
                   help="CSV with a model column and either one accuracy column per dataset or a single accuracy "
                        "column (any name); columns params, source_accuracy and baseline_NAME are baselines "
                        "(default: the PED paper's fine-tune accuracies). Accuracies are fractions (0.85) or "
                        "percentages (85 or 85%%), one scale per column: a column mixing values below 1 with "
                        "values above 1 or written with %% is refused (0 and 1 fit both; write a percentage below 1 "
                        "as 0.5%%), as are values outside [0, 100] and the same accuracy for every scored model")
    p.add_argument("--dataset", help="the truth column (default: the scores' dataset, or the only column)")
    p.add_argument("--top-k", type=int, nargs="+", default=[1, 3], metavar="K")
    p.add_argument("--baseline", action="append", type=_baseline_source, default=[], metavar="NAME=CSV",
                   help="a baseline judged like the score: a CSV of models and one value each (higher = predicted "
                        "better), e.g. params=sizes.csv (repeatable; overrides a truth column of that name)")
    p.add_argument("--random", type=int, default=1000, metavar="N",
                   help="also judge N seeded random rankings, mean +- std (default 1000; 0 turns it off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random rankings (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the metrics as JSON ('-' for stdout)")
    p.set_defaults(handler=_run_evaluate)

    # reproduce
    p = commands.add_parser("reproduce", parents=[common], help="recompute the PED paper's weighted-tau table",
                            description="For every paper (model, dataset) with features in FEATURE_DIR (authors' "
                                        "layout), score LogME, SFDA, GBC with and without PED and print the weighted "
                                        "tau next to the paper's.")
    p.add_argument("feature_dir", metavar="FEATURE_DIR")
    p.add_argument("--metrics", default="logme,sfda,gbc", help="comma-separated (default logme,sfda,gbc)")
    p.add_argument("--dataset", action="append", dest="datasets", metavar="NAME",
                   help="only this dataset (repeatable)")
    _add_ped_arguments(p, flag=False)
    p.add_argument("--json", metavar="OUT", help="write the cells and every model's score as JSON")
    p.set_defaults(handler=_run_reproduce)

    # finetune
    p = commands.add_parser("finetune", parents=[common], help="fine-tune a pool of torch models: the ground truth",
                            description="Fine-tune every model (fresh linear head, SGD with momentum) once per "
                                        "learning rate x weight decay, choose the setting on a validation split of "
                                        "the training part and write its test accuracy: the CSV that `pedrank "
                                        "evaluate --truth` reads. Needs torch. Finished runs are kept in --cache "
                                        "(rerun the same command to resume).")
    p.add_argument("data", metavar="DATA", help=".npz with 'inputs' (n, ...) and 'labels' (n,), optionally "
                                                "'test_inputs' and 'test_labels'")
    p.add_argument("--model", action="append", required=True, metavar="NAME=MODULE:CALLABLE",
                   help="a model of the pool (repeatable): a zero-argument callable returning a torch.nn.Module "
                        "(or a module object), as package.module:name or path/to/file.py:name")
    p.add_argument("--head", action="append", default=[], metavar="[NAME=]replace|append",
                   help="replace the model's last nn.Linear (default) or append a head to a feature extractor; "
                        "for every model, or NAME=... for one (repeatable)")
    p.add_argument("--dataset", help="the dataset's name, the CSV column (default: DATA's file stem)")
    p.add_argument("--lr", type=float, nargs="+", metavar="LR", help="learning rates (default 0.1 0.01 0.001 0.0001)")
    p.add_argument("--wd", type=float, nargs="+", metavar="WD", help="weight decays (default 1e-3 1e-4 1e-5 1e-6 0)")
    p.add_argument("--iterations", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--schedule", default="cosine", help="cosine (default) or constant")
    p.add_argument("--checkpoints", type=int, default=10, help="test accuracy recorded this many times (default 10)")
    p.add_argument("--val-size", type=float, default=0.2)
    p.add_argument("--test-size", type=float, default=0.3, help="used when DATA has no test part")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--cache", metavar="DIR", help="directory of finished runs (resumable; default: none)")
    p.add_argument("-o", "--output", default="accuracies.csv", metavar="CSV",
                   help="the accuracies (a 'model' column, one column for the dataset)")
    p.add_argument("--curves", metavar="CSV", help="every run's test accuracy at every checkpoint (long CSV)")
    p.add_argument("--json", metavar="OUT", help="every run's record as JSON ('-' for stdout)")
    p.set_defaults(handler=_run_finetune)

    # plot
    p = commands.add_parser("plot", parents=[common],
                            help="draw a PED run, a ranking with its intervals or a score-vs-accuracy scatter (PNG)")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    q = kinds.add_parser("ped", parents=[common], help="class means before/after PED (2-D PCA) and the energy per step",
                         description="Run PED on one model's features and draw it.")
    q.add_argument("features", metavar="FILE", help="{model}_{dataset}_feature.npy, .npz or .pt")
    q.add_argument("--labels", metavar="NPY", help="labels for a plain .npy")
    q.add_argument("--reference", metavar="PATH", help="PED's reference statistics")
    _add_ped_arguments(q, flag=False)
    q.add_argument("-o", "--output", default="ped.png", metavar="PNG")
    q.set_defaults(handler=_run_plot_ped)
    q = kinds.add_parser("scores", parents=[common], help="scores against accuracies, one point per model",
                         description="Scatter the scores of `pedrank rank --json` against ground-truth accuracies.")
    q.add_argument("scores", metavar="SCORES")
    q.add_argument("--truth", metavar="CSV", help="as for `pedrank evaluate`")
    q.add_argument("--dataset")
    q.add_argument("-o", "--output", default="scores.png", metavar="PNG")
    q.set_defaults(handler=_run_plot_scores)
    q = kinds.add_parser("ranking", parents=[common], help="scores with their bootstrap intervals, best first",
                         description="Draw the ranking that `pedrank rank --json` wrote: each model's score with its "
                                     "5th-95th percentile bootstrap interval (--confidence) and P(best), best first; "
                                     "with several metrics one panel per metric and the matrix of their Kendall "
                                     "taus.")
    q.add_argument("ranking", metavar="FILE", help="the JSON (or, for one metric, the CSV) of `pedrank rank`")
    q.add_argument("-o", "--output", default="ranking.png", metavar="PNG")
    q.set_defaults(handler=_run_plot_ranking)
    q = kinds.add_parser("finetune", parents=[common],
                         help="weighted tau against accuracy after t fine-tuning iterations, and a scatter",
                         description="Left: weighted tau of each score (with and without PED) against the test "
                                     "accuracy after t iterations of the chosen setting (the PED paper's supp. "
                                     "Fig. 3). Right: scores against fine-tuned accuracy.")
    q.add_argument("curves", metavar="CURVES", help="the long CSV of `pedrank finetune --curves`")
    q.add_argument("--scores", required=True, metavar="CSV",
                   help="long CSV with columns dataset, model, metric, ped (0/1), score")
    q.add_argument("--metric", help="the score of the scatter (default: the first in SCORES)")
    q.add_argument("-o", "--output", default="finetune.png", metavar="PNG")
    q.set_defaults(handler=_run_plot_finetune)

    # demo
    p = commands.add_parser("demo", parents=[common], help="a small real model-selection problem (digits), no download",
                            description="Rank a dozen feature extractors on scikit-learn's digits, against a "
                                        "logistic-regression probe's accuracy, with and without PED.")
    p.add_argument("--output-dir", default="pedrank-demo", metavar="DIR", help="where the plots go")
    p.add_argument("--metric", help="the metric whose tables are printed (default: the recommended score)")
    p.add_argument("--no-plots", action="store_true")
    _add_ped_arguments(p, flag=False)
    p.set_defaults(handler=_run_demo)
    return parser


# ------------------------------------------------------------------------------------------ commands


def _progress_flag(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def _check_metric(metric: str, options: dict[str, Any] | None = None) -> None:
    if metric not in _metrics():
        raise UsageError(f"--metric {metric!r} is not known; expected one of {', '.join(_metrics())}")
    if not options:
        return
    import inspect

    import pedrank

    function = getattr(pedrank, metric.partition(":")[0], None)
    if not callable(function):
        return
    parameters = inspect.signature(function).parameters
    accepted = [name for name, p in parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "backend"]
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise UsageError(f"--option {', '.join(unknown)}: not an option of {metric}; its options: "
                         f"{', '.join(accepted) or 'none'}")


def _write_text(destination: str, text: str) -> None:
    if destination == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        Path(destination).write_text(text if text.endswith("\n") else text + "\n")


def _ped_choice(args: argparse.Namespace) -> Any:
    """The ``ped=`` argument that rank/select get from --ped, its options and --ped-config (checked together)."""
    ped = _ped_options(args)
    if args.ped_config and (args.ped or ped):
        raise UsageError("--ped-config gives PED's setting: drop --ped/--radius/--elastic/... or the config")
    if ped and not args.ped:
        raise UsageError("--radius/--elastic/--time-step/--exit-ratio/--max-steps set PED's options: add --ped")
    if args.no_ped and (args.ped or args.ped_config):
        raise UsageError("--no-ped with --ped/--ped-config: give one of them")
    return args.ped_config if args.ped_config else ped if args.ped else False


def _metric_choice(args: argparse.Namespace) -> tuple[str, Any, str | None]:
    """(metric, ped, note): --metric and PED as given; without --metric, the recommended score with its PED setting
    (unless --ped, --no-ped or --ped-config says otherwise) and a note saying so."""
    ped = _ped_choice(args)
    if args.metric is not None:
        return args.metric, ped, None
    from pedrank.workflow.recommendation import RECOMMENDED

    if not (args.ped or args.no_ped or args.ped_config):
        ped = RECOMMENDED.ped
    note = (f"default metric: {RECOMMENDED.describe()}, pedrank's recommendation from the zoo's evidence (README, "
            f"'Which score should I use?'); --metric NAME chooses another")
    if bool(ped) != RECOMMENDED.ped:
        note += f"; PED {'on' if ped else 'off'} as asked"
    return RECOMMENDED.metric, ped, note


def _print_note(args: argparse.Namespace, note: str | None) -> None:
    """The default-metric note: with the text table on stdout, above it; else on stderr (stdout is data)."""
    if note:
        print(note, file=sys.stderr if "-" in (args.json, args.csv) else sys.stdout)


def _write_table(args: argparse.Namespace, table: Any) -> None:
    """--json / --csv (a path or '-' for stdout), and the text table unless one of them went to stdout."""
    if args.json:
        _write_text(args.json, table.to_json())
    if args.csv:
        _write_text(args.csv, table.to_csv())
    if "-" not in (args.json, args.csv):
        print(table.to_string())


def _check_metrics(metrics: list[str], options: dict[str, Any]) -> None:
    """Several metrics: each known, and each option taken by at least one of them."""
    for metric in metrics:
        _check_metric(metric)
    if len(set(metrics)) != len(metrics):
        raise UsageError(f"--metric {','.join(metrics)}: a metric is named twice")
    for key, value in options.items():
        takers = []
        for metric in metrics:
            try:
                _check_metric(metric, {key: value})
                takers.append(metric)
            except UsageError:
                pass
        if not takers:
            raise UsageError(f"--option {key}: not an option of any of {', '.join(metrics)}")


def _add_confidence_arguments(p: argparse.ArgumentParser) -> None:
    """--confidence, --seed and --separated, the same for rank and select."""
    group = p.add_argument_group("how sure is the ranking")
    group.add_argument("--confidence", type=int, metavar="B",
                       help="resample the target rows B times (stratified bootstrap) and rescore every model on "
                            "each: P(best), 5th-95th percentile rank and score intervals per model, and the share "
                            "of resamples whose best is the measured best (costs about B + 1 plain runs)")
    group.add_argument("--seed", type=int, metavar="S",
                       help="seed of the resamples (default 0); also the seed of a metric that takes one (pactran, "
                            "etran, nleep, parc), as --option random_state=S")
    group.add_argument("--separated", type=float, default=0.8, metavar="P",
                       help="warn (one line on stderr) when the top model is best in fewer than this share of the "
                            "resamples (default 0.8); also when the metrics disagree on the best model, or when the "
                            "resamples shift the top two scores apart by more than their measured gap")


def _check_confidence_arguments(args: argparse.Namespace) -> None:
    if args.confidence is not None and args.confidence < 1:
        raise UsageError(f"--confidence {args.confidence}: expected a number of resamples >= 1")
    if not 0 < args.separated <= 1:
        raise UsageError(f"--separated {args.separated}: expected a share in (0, 1]")


def _seed_choice(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The ``random_state`` of rank: --seed, or --option random_state=S (the same seed; both must agree)."""
    option = options.pop("random_state", None)
    if args.seed is not None and option is not None and option != args.seed:
        raise UsageError(f"--seed {args.seed} and --option random_state={option}: one seed seeds both the resamples "
                         "and the metric; give one of them")
    return args.seed if args.seed is not None else option


def _run_rank(args: argparse.Namespace) -> int:
    from pedrank.workflow.io import find_features, load_reference
    from pedrank.workflow.rank import rank

    metric, ped, note = _metric_choice(args)
    metrics = [m.strip() for m in metric.split(",") if m.strip()]
    options = dict(args.option)
    if len(metrics) > 1 or "," in metric:
        _check_metrics(metrics, options)
    else:
        _check_metric(metric, options)
    _check_confidence_arguments(args)
    random_state = _seed_choice(args, options)
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
        progress=_progress_flag(args),
        baselines=baselines or None,
        confidence=args.confidence,
        random_state=random_state,
        **options,
    )
    _print_note(args, note)
    _write_table(args, table)
    warning = table.separation_warning(args.separated)
    if warning:
        print(f"pedrank rank: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _run_select(args: argparse.Namespace) -> int:
    import warnings

    from pedrank.workflow.select import BadImageWarning, select

    metric, ped, note = _metric_choice(args)
    options = dict(args.option)
    _check_metric(metric, options)
    _check_confidence_arguments(args)
    random_state = _seed_choice(args, options)
    if args.scheduler and args.workers:
        raise UsageError("--scheduler and --workers: give one of them")
    models: dict[str, str] = {}
    for item in args.models:
        name, sep, spec = item.partition("=")
        if not sep or ":" in name or "/" in name or not name:
            from pedrank.workflow.select import model_name

            name, spec = model_name(item, len(models)), item
        if name in models:
            raise UsageError(f"MODEL {item!r}: the name {name!r} is taken; give NAME=MODEL")
        models[name] = spec
    layers: Any = None
    if args.layers:
        layers = "all" if args.layers == "all" else [
            int(v) if v.strip().lstrip("-").isdigit() else v.strip() for v in args.layers.split(",") if v.strip()]
        if layers == "all" and len(models) > 1:
            raise UsageError("--layers all ranks the layers of one model; give one MODEL")
    executor = None
    if args.workers:
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(args.workers)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BadImageWarning)
            table = select(
                models, args.data, metric=metric,
                ped=ped,
                layers=layers, cache_dir=args.cache, batch_size=args.batch_size, device=args.device,
                dtype=args.dtype, pooling=args.pooling, image_size=args.image_size, pretrained=not args.no_pretrained,
                max_samples=args.max_samples, dataset=args.dataset, text_column=args.text_column,
                label_column=args.label_column, bad_images=args.bad_images, backend=args.backend,
                executor=executor, scheduler=args.scheduler, progress=_progress_flag(args),
                confidence=args.confidence, random_state=random_state, **options,
            )
    finally:
        if executor is not None:
            executor.shutdown()
    for warning in caught:
        # The skipped files as one plain line (not Python's file:line form); other warnings as Python shows them.
        if issubclass(warning.category, BadImageWarning):
            print(f"pedrank select: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    _print_note(args, note)
    _write_table(args, table)
    separation = table.separation_warning(args.separated)
    if separation:
        print(f"pedrank select: warning: {separation}", file=sys.stderr)
    return EXIT_OK if len(table.errors) < len(table) else EXIT_FAILURE


def _run_tune(args: argparse.Namespace) -> int:
    from pedrank.workflow.tune import tune

    grid: dict[str, list[Any]] = {}
    for option in ("radius", "elastic", "time_step", "exit_ratio", "max_steps"):
        text = getattr(args, option)
        if text is None:
            continue
        try:
            grid[option] = [int(v) if option == "max_steps" else float(v) for v in text.split(",") if v.strip()]
        except ValueError as exc:
            raise UsageError(f"--{option.replace('_', '-')}: expected comma-separated numbers, found {text!r}") from exc
    if not grid:
        grid = {"elastic": [0.6, 0.8, 1.0, 1.2, 1.5, 2.0], "radius": [0.3, 0.6, 1.0]}
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
                  backend=args.backend, cache=args.cache, progress=_progress_flag(args))
    if args.output:
        result.write_config(args.output)
    if args.json:
        _write_text(args.json, result.to_json())
    if args.json != "-":
        print(result.to_string())
        if args.output:
            print(f"settings written to {args.output}")
    return EXIT_OK


def _read_truth(args: argparse.Namespace, info: dict[str, Any]):
    from pedrank.workflow import paper
    from pedrank.workflow.evaluate import read_truth

    dataset = args.dataset or info.get("dataset")
    truth_file = args.truth or str(paper.GROUND_TRUTH_FILE)
    return read_truth(truth_file, dataset), dataset


def _truth(args: argparse.Namespace, info: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    truth, dataset = _read_truth(args, info)
    return truth.accuracies, dataset


def _run_evaluate(args: argparse.Namespace) -> int:
    from pedrank.workflow.evaluate import evaluate, read_baseline
    from pedrank.workflow.io import read_scores

    if args.random < 0:
        raise UsageError(f"--random {args.random}: expected a number of rankings >= 0")
    scores, info = read_scores(args.scores)
    truth, dataset = _read_truth(args, info)
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
        _write_text(args.json, json.dumps(values, indent=2))
    if args.json != "-":
        print(f"{args.scores} against {truth.path}, column {truth.column!r}"
              + (f" (dataset {dataset})" if dataset and dataset != truth.column else ""))
        print(result.to_string())
    return EXIT_OK


def _run_reproduce(args: argparse.Namespace) -> int:
    from pedrank.workflow.reproduce import reproduce

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for metric in metrics:
        _check_metric(metric)
    result = reproduce(
        args.feature_dir, metrics=metrics, ped=_ped_options(args) or True, datasets=args.datasets,
        progress=_progress_flag(args),
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
        _write_text(args.json, json.dumps(payload, indent=2, default=lambda v: None))
    return EXIT_OK


def _run_plot_ped(args: argparse.Namespace) -> int:
    from pedrank.frontends.plot import plot_ped
    from pedrank.workflow.io import load_features, load_reference

    features, labels = load_features(args.features, args.labels)
    reference = None if args.reference is None else load_reference(args.reference)
    try:
        result = plot_ped(features, labels, args.output, reference=reference, title=Path(args.features).name,
                          **_ped_options(args))
    except ValueError as exc:
        raise with_context(exc, str(args.features)) from exc
    energies = ", ".join(f"{e:.4g}" for e in result.energies)
    print(f"{args.output}: {result.steps} PED step(s); potential energy per step: {energies}")
    return EXIT_OK


def _run_plot_scores(args: argparse.Namespace) -> int:
    from pedrank.frontends.plot import plot_scores
    from pedrank.workflow.io import read_scores

    scores, info = read_scores(args.scores)
    truth, dataset = _truth(args, info)
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


def _run_plot_ranking(args: argparse.Namespace) -> int:
    from pedrank.frontends.plot import plot_ranking
    from pedrank.workflow.confidence import read_ranking

    ranking = read_ranking(args.ranking)
    drawn = plot_ranking(ranking, args.output)
    resamples = {table.n_resamples for table in drawn["tables"].values()} - {None}
    intervals = (f"intervals from {', '.join(map(str, sorted(resamples)))} resamples" if resamples
                 else "no intervals (rank with --confidence B for them)")
    print(f"{args.output}: {len(drawn['tables'])} metric(s), {len(drawn['models'])} models, {intervals}")
    return EXIT_OK


def _run_finetune(args: argparse.Namespace) -> int:
    import numpy as np

    from pedrank.workflow.finetune import (
        DEFAULT_LEARNING_RATES,
        DEFAULT_WEIGHT_DECAYS,
        finetune,
        write_accuracies,
        write_curves,
    )
    from pedrank.workflow.io import FeatureFileError

    data_path = Path(args.data)
    if not data_path.is_file():
        raise FeatureFileError(data_path, "no such file")
    try:
        with np.load(data_path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise FeatureFileError(data_path, f"not a readable .npz ({exc})") from exc
    missing = [key for key in ("inputs", "labels") if key not in arrays]
    if missing:
        raise FeatureFileError(data_path, f"missing {missing}; found keys {sorted(arrays)}, expected 'inputs' and "
                                          "'labels' (and optionally 'test_inputs', 'test_labels')")
    if ("test_inputs" in arrays) != ("test_labels" in arrays):
        raise FeatureFileError(data_path, "found only one of 'test_inputs' and 'test_labels'; expected both or neither")
    from pedrank.workflow.select import load_callable

    models: dict[str, Any] = {}
    for item in args.model:
        name, sep, spec = item.partition("=")
        if not sep:
            name, spec = item.rpartition(":")[2], item
        if not name or name in models:
            raise UsageError(f"--model: found {item!r}; expected NAME=MODULE:CALLABLE with a new NAME")
        models[name] = load_callable(spec, name="--model")
    heads: dict[str, str] = {}
    default_head = "replace"
    for item in args.head:
        name, sep, value = item.rpartition("=")
        if value not in ("replace", "append"):
            raise UsageError(f"--head: found {item!r}; expected replace, append, or NAME=replace|append")
        if not sep:
            default_head = value
        elif name not in models:
            raise UsageError(f"--head: found model {name!r}; expected one of {sorted(models)}")
        else:
            heads[name] = value
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result = finetune(
        models, arrays["inputs"], arrays["labels"],
        test_inputs=arrays.get("test_inputs"), test_labels=arrays.get("test_labels"),
        dataset=args.dataset or data_path.stem, test_size=args.test_size, val_size=args.val_size,
        learning_rates=args.lr or DEFAULT_LEARNING_RATES, weight_decays=args.wd if args.wd is not None
        else DEFAULT_WEIGHT_DECAYS, iterations=args.iterations, batch_size=args.batch_size,
        momentum=args.momentum, schedule=args.schedule, checkpoints=args.checkpoints,
        head={name: heads.get(name, default_head) for name in models}, seed=args.seed, device=args.device,
        cache_dir=args.cache, progress=_progress_flag(args),
    )
    write_accuracies(args.output, result)
    if args.curves:
        write_curves(args.curves, result)
    if args.json:
        _write_text(args.json, json.dumps([{k: v for k, v in r.items()} for r in result.runs], indent=1))
    print(result)
    print(f"wrote {args.output}" + (f" and {args.curves}" if args.curves else ""))
    return EXIT_OK


def _run_plot_finetune(args: argparse.Namespace) -> int:
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


def _run_demo(args: argparse.Namespace) -> int:
    from pedrank.frontends.demo import run_demo

    if args.metric is not None:
        _check_metric(args.metric)
    run_demo(
        None if args.no_plots else args.output_dir,
        metric=args.metric,
        metrics=[m for m in ("logme", "sfda", "gbc") if m in _metrics()],
        ped=_ped_options(args) or True,
        plots=not args.no_plots,
        progress=_progress_flag(args),
    )
    return EXIT_OK


# ------------------------------------------------------------------------------------------ entry point


def _fail(command: str | None, message: str, code: int) -> int:
    prefix = f"pedrank {command}" if command else "pedrank"
    print(f"{prefix}: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 and a usage message on bad syntax
    command = args.command
    if os.environ.get("PEDRANK_DEBUG"):
        return args.handler(args)
    try:
        return args.handler(args)
    except UsageError as exc:
        return _fail(command, str(exc), EXIT_USAGE)
    except PedrankValueError as exc:  # every input problem pedrank detects (file errors included): exit 2
        return _fail(command, str(exc), EXIT_USAGE)
    except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return _fail(command, f"{where}{exc.strerror or exc}", EXIT_USAGE)
    except MemoryError as exc:
        return _fail(command, f"not enough memory: {exc}", EXIT_FAILURE)
    except ImportError as exc:
        return _fail(command, str(exc), EXIT_FAILURE)
    except OSError as exc:
        return _fail(command, str(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # not an input problem pedrank recognised: a bug, not the user's fault
        return _fail(command, f"internal error, a bug in pedrank ({type(exc).__name__}: {exc}); rerun with "
                     "PEDRANK_DEBUG=1 for the traceback and report it", EXIT_FAILURE)


def _entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Output piped into `head`: not an error; silence Python's complaint at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    sys.exit(code)


if __name__ == "__main__":
    _entry()
