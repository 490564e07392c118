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

from pedrank._engine import backend as backend  # public name of the backends: pedrank.backend
from pedrank._engine.config import set_threads, show_config
from pedrank._engine.memory import InsufficientMemoryError
from pedrank._engine.validation import (
    DegenerateScoreWarning,
    FeatureScaleWarning,
    MissingDependencyError,
    NonFiniteScoreError,
    PedLeakageWarning,
    PedrankError,
    PedrankValueError,
    UninformativeFeaturesError,
)
from pedrank.scores.etran import etran
from pedrank.scores.gbc import gbc
from pedrank.scores.hscore import h_score, regularized_h_score
from pedrank.scores.itm import itm
from pedrank.scores.knn import knn
from pedrank.scores.lead import lead
from pedrank.scores.leep import leep
from pedrank.scores.logme import LogME, logme
from pedrank.scores.nce import nce
from pedrank.scores.ncti import ncti
from pedrank.scores.nleep import nleep
from pedrank.scores.pactran import pactran
from pedrank.scores.parc import parc
from pedrank.scores.ped import PEDResult, ped
from pedrank.scores.scoring import METRICS, score
from pedrank.scores.sfda import SFDA, sfda
from pedrank.scores.transrate import transrate
from pedrank.workflow.confidence import Agreement
from pedrank.workflow.evaluate import evaluate
from pedrank.workflow.extract import extract_features
from pedrank.workflow.rank import RankTable, rank
from pedrank.workflow.recommendation import RECOMMENDED
from pedrank.workflow.select import select

__version__ = "0.1.0"

__all__ = [
    "Agreement",
    "DegenerateScoreWarning",
    "FeatureScaleWarning",
    "METRICS",
    "InsufficientMemoryError",
    "LogME",
    "MissingDependencyError",
    "NonFiniteScoreError",
    "PEDResult",
    "PedLeakageWarning",
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


def _serve_old_import_paths() -> None:
    import sys

    from pedrank import _aliases

    _aliases.install({name: module for name, module in sys.modules.items() if name.startswith("pedrank.")})


_serve_old_import_paths()
