"""Pure-NumPy reference implementations of every score.

Written from the math (``spec/ALGORITHMS.md``) as direct ports of the authors'
algorithms, with the same names and signatures as the public functions. They are
the parity oracle of the compiled core and the baseline of the benchmarks: slow
and memory-hungry on purpose (e.g. PED's C x C x D tensor), never the fast path.
"""

from pedrank.reference.ped import ped
from pedrank.scores.registry import scores
from pedrank.scores.scoring import METRICS, build_score

#: Every score's reference function, by metric name, as its registry entry names it.
_METRIC_FUNCTIONS = {name: entry.reference_function() for name, entry in scores().items()}
globals().update(_METRIC_FUNCTIONS)

__all__ = ["METRICS", "ped", "score", *_METRIC_FUNCTIONS]

score = build_score(_METRIC_FUNCTIONS, ped)
