"""The numbers that define the scores, read from the compiled core (cpp/constants.hpp states each once, with why).

The torch kernels and ``pedrank.reference`` use these names instead of literals, so the three implementations
cannot drift apart.
"""

from __future__ import annotations

from pedrank import _core

__all__ = [
    "GBC_VARIANCE_FLOOR",
    "LOGME_EPSILON",
    "LOGME_MAX_ITERATIONS",
    "LOGME_RANK_TOLERANCE",
    "LOGME_TOLERANCE",
    "PED_SCALE_FLOOR",
    "SFDA_MIN_SHRINKAGE",
    "SFDA_POWER_ROUNDS",
    "SFDA_ZERO_SCATTER_FACTOR",
]

LOGME_MAX_ITERATIONS: int = int(_core.LOGME_MAX_ITERATIONS)
LOGME_TOLERANCE: float = float(_core.LOGME_TOLERANCE)
LOGME_EPSILON: float = float(_core.LOGME_EPSILON)
LOGME_RANK_TOLERANCE: float = float(_core.LOGME_RANK_TOLERANCE)
SFDA_POWER_ROUNDS: int = int(_core.SFDA_POWER_ROUNDS)
SFDA_MIN_SHRINKAGE: float = float(_core.SFDA_MIN_SHRINKAGE)
SFDA_ZERO_SCATTER_FACTOR: float = float(_core.SFDA_ZERO_SCATTER_FACTOR)
GBC_VARIANCE_FLOOR: float = float(_core.GBC_VARIANCE_FLOOR)
PED_SCALE_FLOOR: float = float(_core.PED_SCALE_FLOOR)
