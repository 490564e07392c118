"""What the subcommands share: exit codes, the usage error, option types and the argument groups and choices
that several subcommands take (PED's options, the metric and its default, confidence, output)."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pedrank._engine.validation import PedrankValueError

if TYPE_CHECKING:
    from pedrank.workflow.evaluate import Truth

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: the metrics offered when the registry cannot be read
KNOWN_METRICS = ("logme", "sfda", "gbc")


class UsageError(PedrankValueError):
    """A bad combination of command-line options (exit status 2)."""


# ------------------------------------------------------------------------------------------ option types


def metrics() -> tuple[str, ...]:
    """Every name ``--metric`` accepts (pedrank.scores.scoring.METRIC_NAMES)."""
    try:
        import pedrank

        return tuple(pedrank.scores.scoring.METRIC_NAMES)
    except (ImportError, AttributeError):
        return KNOWN_METRICS


def metric_option(text: str) -> tuple[str, Any]:
    """``--option KEY=VALUE``: the key (dashes as underscores) and the value as a Python literal, else the text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, found {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip().replace("-", "_"), parsed


def baseline_source(text: str) -> tuple[str, str]:
    """``--baseline NAME=CSV``."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=CSV (e.g. params=sizes.csv), found {text!r}")
    return name.strip(), path


# ------------------------------------------------------------------------------------------ argument groups


def add_ped_arguments(parser: argparse.ArgumentParser, *, flag: bool) -> None:
    """PED's options; with ``flag``, also --ped and --no-ped."""
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


def ped_options(args: argparse.Namespace) -> dict[str, Any]:
    """The PED options given on the command line."""
    names = ("radius", "elastic", "time_step", "exit_ratio", "max_steps")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def add_confidence_arguments(p: argparse.ArgumentParser) -> None:
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


# ------------------------------------------------------------------------------------------ checks and choices


def progress_flag(args: argparse.Namespace) -> bool | None:
    """``progress=`` of the workflow: off with --no-progress, else its default."""
    return False if args.no_progress else None


def check_metric(metric: str, options: dict[str, Any] | None = None) -> None:
    """A known metric, and options that it takes."""
    if metric not in metrics():
        raise UsageError(f"--metric {metric!r} is not known; expected one of {', '.join(metrics())}")
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


def ped_choice(args: argparse.Namespace) -> Any:
    """The ``ped=`` argument that rank/select get from --ped, its options and --ped-config (checked together)."""
    ped = ped_options(args)
    if args.ped_config and (args.ped or ped):
        raise UsageError("--ped-config gives PED's setting: drop --ped/--radius/--elastic/... or the config")
    if ped and not args.ped:
        raise UsageError("--radius/--elastic/--time-step/--exit-ratio/--max-steps set PED's options: add --ped")
    if args.no_ped and (args.ped or args.ped_config):
        raise UsageError("--no-ped with --ped/--ped-config: give one of them")
    return args.ped_config if args.ped_config else ped if args.ped else False


def metric_choice(args: argparse.Namespace) -> tuple[str, Any, str | None]:
    """(metric, ped, note): --metric and PED as given; without --metric, the recommended score with its PED setting
    (unless --ped, --no-ped or --ped-config says otherwise) and a note saying so."""
    ped = ped_choice(args)
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


def check_confidence_arguments(args: argparse.Namespace) -> None:
    """--confidence and --separated in range."""
    if args.confidence is not None and args.confidence < 1:
        raise UsageError(f"--confidence {args.confidence}: expected a number of resamples >= 1")
    if not 0 < args.separated <= 1:
        raise UsageError(f"--separated {args.separated}: expected a share in (0, 1]")


def seed_choice(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The ``random_state`` of rank: --seed, or --option random_state=S (the same seed; both must agree)."""
    option = options.pop("random_state", None)
    if args.seed is not None and option is not None and option != args.seed:
        raise UsageError(f"--seed {args.seed} and --option random_state={option}: one seed seeds both the resamples "
                         "and the metric; give one of them")
    return args.seed if args.seed is not None else option


def read_truth_option(args: argparse.Namespace, info: dict[str, Any]) -> tuple[Truth, str | None]:
    """(the Truth of --truth, else the paper's accuracies; the dataset): its column is --dataset, else the scores'
    dataset (``info`` of ``read_scores``)."""
    from pedrank.workflow import paper
    from pedrank.workflow.evaluate import read_truth

    dataset = args.dataset or info.get("dataset")
    truth_file = args.truth or str(paper.GROUND_TRUTH_FILE)
    return read_truth(truth_file, dataset), dataset


def truth_accuracies(args: argparse.Namespace, info: dict[str, Any]) -> tuple[dict[str, float], str | None]:
    """(model -> accuracy, dataset) of :func:`read_truth_option`."""
    truth, dataset = read_truth_option(args, info)
    return truth.accuracies, dataset


# ------------------------------------------------------------------------------------------ output


def write_text(destination: str, text: str) -> None:
    """Write ``text`` (ending in a newline) to a file, or to stdout for '-'."""
    if destination == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        Path(destination).write_text(text if text.endswith("\n") else text + "\n")


def print_note(args: argparse.Namespace, note: str | None) -> None:
    """The default-metric note: with the text table on stdout, above it; else on stderr (stdout is data)."""
    if note:
        print(note, file=sys.stderr if "-" in (args.json, args.csv) else sys.stdout)


def write_table(args: argparse.Namespace, table: Any) -> None:
    """--json / --csv (a path or '-' for stdout), and the text table unless one of them went to stdout."""
    if args.json:
        write_text(args.json, table.to_json())
    if args.csv:
        write_text(args.csv, table.to_csv())
    if "-" not in (args.json, args.csv):
        print(table.to_string())
