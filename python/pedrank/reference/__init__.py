"""Pure-NumPy reference implementations of every score.

Written from the math (``spec/ALGORITHMS.md``) as direct ports of the authors'
algorithms, with the same names and signatures as the public functions. They are
the parity oracle of the compiled core and the baseline of the benchmarks: slow
and memory-hungry on purpose (e.g. PED's C x C x D tensor), never the fast path.
"""

from ..scoring import METRICS, build_score
from .gbc import gbc
from .hscore import h_score, regularized_h_score
from .leep import leep
from .logme import logme
from .nce import nce
from .nleep import nleep
from .parc import parc
from .ped import ped
from .sfda import sfda
from .transrate import transrate

__all__ = [
    "METRICS",
    "gbc",
    "h_score",
    "leep",
    "logme",
    "nce",
    "nleep",
    "parc",
    "ped",
    "regularized_h_score",
    "score",
    "sfda",
    "transrate",
]

#: Same metric names, in the same order, as :data:`pedrank.METRICS`.
_METRIC_FUNCTIONS = {name: globals()[name] for name in METRICS}
score = build_score(_METRIC_FUNCTIONS, ped)
