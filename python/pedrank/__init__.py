"""pedrank: fast, exact transferability scores for choosing which pre-trained model to fine-tune.

Scores (higher is better): :func:`logme`, :func:`sfda`, :func:`gbc`, :func:`nleep`,
:func:`parc`, :func:`h_score`, :func:`regularized_h_score`, :func:`transrate`, and on
a source model's outputs :func:`leep`, :func:`nce`. :func:`ped` moves class clusters
apart (potential-energy decline, Li et al., ICCV 2023) before scoring; :func:`score`
runs any metric, with or without PED; :func:`rank` scores a pool of models and
:func:`evaluate` judges a ranking against fine-tune accuracies.
``pedrank.reference`` holds pure-NumPy ports of the authors' algorithms (the parity
oracle and benchmark baseline).
"""

from ._config import set_threads, show_config
from ._memory import InsufficientMemoryError
from ._recommendation import RECOMMENDED
from ._validation import (
    MissingDependencyError,
    NonFiniteScoreError,
    PedrankError,
    PedrankValueError,
    UninformativeFeaturesError,
)
from .confidence import Agreement
from .etran import etran
from .evaluate import evaluate
from .extract import extract_features
from .gbc import gbc
from .hscore import h_score, regularized_h_score
from .itm import itm
from .knn import knn
from .lead import lead
from .leep import leep
from .logme import LogME, logme
from .nce import nce
from .ncti import ncti
from .nleep import nleep
from .pactran import pactran
from .parc import parc
from .ped import PEDResult, ped
from .rank import RankTable, rank
from .scoring import METRICS, score
from .select import select
from .sfda import SFDA, sfda
from .transrate import transrate

__version__ = "0.1.0"

__all__ = [
    "Agreement",
    "METRICS",
    "InsufficientMemoryError",
    "LogME",
    "MissingDependencyError",
    "NonFiniteScoreError",
    "PEDResult",
    "PedrankError",
    "PedrankValueError",
    "RECOMMENDED",
    "RankTable",
    "SFDA",
    "UninformativeFeaturesError",
    "etran",
    "evaluate",
    "extract_features",
    "gbc",
    "h_score",
    "itm",
    "knn",
    "lead",
    "leep",
    "logme",
    "nce",
    "ncti",
    "nleep",
    "pactran",
    "parc",
    "ped",
    "rank",
    "regularized_h_score",
    "score",
    "select",
    "sfda",
    "set_threads",
    "show_config",
    "transrate",
]


# Every registered score is named above; tests/test_registry.py fails when a score module registers one that is
# not (so a new score is exported by one line here, visible to IDEs and type checkers).
