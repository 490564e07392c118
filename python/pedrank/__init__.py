"""pedrank: fast, exact transferability scores for choosing which pre-trained model to fine-tune.

Scores (higher is better): :func:`logme`, :func:`sfda`, :func:`gbc`; :func:`ped`
moves class clusters apart (potential-energy decline, Li et al., ICCV 2023) before
scoring; :func:`score` runs any metric, with or without PED. ``pedrank.reference``
holds pure-NumPy ports of the authors' algorithms (the parity oracle).
"""

from ._validation import PedrankValueError
from .gbc import gbc
from .logme import LogME, logme
from .ped import PEDResult, ped
from .scoring import METRICS, score
from .sfda import SFDA, sfda

__version__ = "0.1.0"

__all__ = [
    "METRICS",
    "LogME",
    "PEDResult",
    "PedrankValueError",
    "SFDA",
    "gbc",
    "logme",
    "ped",
    "score",
    "sfda",
]
