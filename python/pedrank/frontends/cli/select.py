"""``pedrank select``: extract the features of models on a dataset, then score and rank them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pedrank.frontends.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    UsageError,
    add_confidence_arguments,
    add_ped_arguments,
    check_confidence_arguments,
    check_metric,
    metric_choice,
    metric_option,
    print_note,
    progress_flag,
    seed_choice,
    write_table,
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``select`` subcommand's arguments."""
    p = commands.add_parser(
        "select", parents=parents, help="extract features of models on a dataset, then score and rank them",
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
    p.add_argument("--option", action="append", type=metric_option, default=[], metavar="KEY=VALUE",
                   help="an option of the metric (repeatable)")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "torch"))
    add_ped_arguments(p, flag=True)
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
    p.add_argument("--max-samples", type=int, metavar="N",
                   help="a stratified subset of N samples: each class keeps its share (at least one each), drawn "
                        "with a fixed seed, the same rows for every model")
    p.add_argument("--dataset", help="the dataset's name (default: DATA's name)")
    p.add_argument("--text-column", help="the CSV's (or datasets folder's) text column (default text, or the first)")
    p.add_argument("--label-column", help="the CSV's (or datasets folder's) label column (default label, or the "
                                          "last)")
    add_confidence_arguments(p)
    p.add_argument("--bad-images", default="raise", choices=("raise", "skip"),
                   help="an image file that cannot be read: raise (default: exit 2 naming it) or skip it, with its "
                        "label, for every model (a warning names the files skipped)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler (tcp://host:8786): one task per model on its workers")
    p.add_argument("--workers", type=int, metavar="N", help="run N models at a time in local processes")
    p.add_argument("--json", metavar="OUT", help="write the records as JSON ('-' for stdout instead of the table)")
    p.add_argument("--csv", metavar="OUT", help="write the records as CSV ('-' for stdout instead of the table)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``pedrank select``; returns the exit status (1 when every model failed)."""
    import warnings

    from pedrank.workflow.select import BadImageWarning, select

    metric, ped, note = metric_choice(args)
    options = dict(args.option)
    check_metric(metric, options)
    check_confidence_arguments(args)
    random_state = seed_choice(args, options)
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
                executor=executor, scheduler=args.scheduler, progress=progress_flag(args),
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
    print_note(args, note)
    write_table(args, table)
    separation = table.separation_warning(args.separated)
    if separation:
        print(f"pedrank select: warning: {separation}", file=sys.stderr)
    return EXIT_OK if len(table.errors) < len(table) else EXIT_FAILURE
