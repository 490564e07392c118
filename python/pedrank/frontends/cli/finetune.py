"""``pedrank finetune``: fine-tune a pool of torch models for the ground truth that ``evaluate --truth`` reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pedrank.frontends.cli.common import EXIT_OK, UsageError, progress_flag, write_text


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """The ``finetune`` subcommand's arguments."""
    p = commands.add_parser("finetune", parents=parents, help="fine-tune a pool of torch models: the ground truth",
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
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``pedrank finetune``; returns the exit status."""
    from pedrank.workflow.finetune import (
        DEFAULT_LEARNING_RATES,
        DEFAULT_WEIGHT_DECAYS,
        finetune,
        write_accuracies,
        write_curves,
    )
    from pedrank.workflow.io import read_finetune_data

    data_path = Path(args.data)
    arrays = read_finetune_data(data_path)
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
        cache_dir=args.cache, progress=progress_flag(args),
    )
    write_accuracies(args.output, result)
    if args.curves:
        write_curves(args.curves, result)
    if args.json:
        write_text(args.json, json.dumps([{k: v for k, v in r.items()} for r in result.runs], indent=1))
    print(result)
    print(f"wrote {args.output}" + (f" and {args.curves}" if args.curves else ""))
    return EXIT_OK
