"""The ``pedrank`` command line: rank, select, tune, evaluate, reproduce, finetune, plot, demo.

One module per subcommand (``rank.py``, ``select.py``, ...), each with its ``add_parser`` and the function that
runs it; ``common.py`` holds what several share; ``dispatch.py`` builds the parser from them and runs ``main``.

Exit status: 0 success; 2 bad usage or bad input (the message on stderr names the file and the reason);
1 the work could not be done for another reason (e.g. not enough memory, matplotlib missing), or an internal error
(a bug in pedrank: the line says so). User errors never print a Python traceback; set ``PEDRANK_DEBUG=1`` to see
one anyway.
"""

from __future__ import annotations

from pedrank.frontends.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from pedrank.frontends.cli.dispatch import build_parser, main

__all__ = ["main", "build_parser", "UsageError", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]
