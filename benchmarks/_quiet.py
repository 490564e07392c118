"""Pause the background fine-tuning campaign around a timed call, and always resume it.

    with quiet():
        ...timed work...

Finds ``benchmarks/zoo/campaign.py finetune`` with ``pgrep -f`` (only that job, by its process ids), sends SIGSTOP
before the block and SIGCONT after it (in ``finally``). ``PEDRANK_BENCH_NO_PAUSE=1`` leaves it running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def campaign_pids():
    if os.environ.get("PEDRANK_BENCH_NO_PAUSE"):
        return []
    try:
        found = subprocess.run(["pgrep", "-f", "campaign.py finetune"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [int(pid) for pid in found.split() if int(pid) != os.getpid()]


@contextlib.contextmanager
def quiet():
    pids = campaign_pids()
    stopped = []
    try:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            except ProcessLookupError:
                pass
        yield
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
