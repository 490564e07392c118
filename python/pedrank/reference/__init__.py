"""Pure-NumPy reference implementations of every score.

Written from the math (``spec/ALGORITHMS.md``) as direct ports of the authors'
algorithms, with the same names and signatures as the public functions. They are
the parity oracle of the compiled core and the baseline of the benchmarks: slow
and memory-hungry on purpose (e.g. PED's C x C x D tensor), never the fast path.
"""

from ..scoring import build_score
from .gbc import gbc
from .logme import logme
from .ped import ped
from .sfda import sfda

__all__ = ["METRICS", "gbc", "logme", "ped", "score", "sfda"]

_METRIC_FUNCTIONS = {"logme": logme, "sfda": sfda, "gbc": gbc}
METRICS = tuple(_METRIC_FUNCTIONS)


score = build_score(_METRIC_FUNCTIONS, ped)
