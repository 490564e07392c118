"""The dispatcher: the parser made of every subcommand's part, and ``main``, which runs the chosen subcommand and
turns what it raises into an exit status and one line on stderr."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any, Sequence

from pedrank._engine.validation import PedrankValueError
from pedrank.frontends.cli import demo, evaluate, finetune, plot, rank, reproduce, select, tune
from pedrank.frontends.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError

#: the subcommands, in the order of ``pedrank --help``; each module adds its parser and sets its handler
SUBCOMMANDS = (rank, tune, select, evaluate, reproduce, finetune, plot, demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``pedrank`` parser: every subcommand's arguments, with ``handler`` set to the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="pedrank",
        description="Rank pre-trained models by transferability scores (LogME, SFDA, GBC, ..., with PED).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-progress", action="store_true", help="never show progress bars")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(commands, [common])
    return parser


def _fail(command: str | None, message: str, code: int) -> int:
    prefix = f"pedrank {command}" if command else "pedrank"
    print(f"{prefix}: error: {message}", file=sys.stderr)
    return code


def _warning_line(command: str, python_format: Any) -> Any:
    """``warnings.formatwarning`` for the command: pedrank's own warnings as one line that names the command, as
    its errors do (Python's form, with a source line of pedrank's code, tells a command-line user nothing)."""

    def format_warning(message, category, filename, lineno, line=None):
        if category.__module__.startswith("pedrank"):
            return f"pedrank {command}: warning ({category.__name__}): {message}\n"
        return python_format(message, category, filename, lineno, line)

    return format_warning


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 and a usage message on bad syntax
    command = args.command
    python_format = warnings.formatwarning
    warnings.formatwarning = _warning_line(command, python_format)
    try:
        return _run(args, command)
    finally:
        warnings.formatwarning = python_format


def _run(args: argparse.Namespace, command: str) -> int:
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


def entry() -> None:
    """``python -m pedrank.frontends.cli``: :func:`main`, then exit with its status (quietly into a closed pipe)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Output piped into `head`: not an error; silence Python's complaint at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    sys.exit(code)
