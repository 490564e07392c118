"""pedrank's file formats, one module each; every name is imported from ``pedrank.workflow.io`` itself.

- :mod:`~pedrank.workflow.io.features`: feature files (the PED/SFDA authors' ``{model}_{dataset}_feature.npy``
  beside ``_label.npy``, ``.npz`` archives, torch files, plain ``.npy``) and PED's reference statistics
  (``{model}_reference.npy/.npz/.pt``), found in folders by :func:`find_features`;
- :mod:`~pedrank.workflow.io.truth`: ground-truth (accuracy) CSVs and baseline columns (:func:`read_truth`,
  :func:`read_accuracies`, :func:`read_baseline`, the scale rule :func:`check_accuracies`);
- :mod:`~pedrank.workflow.io.scores`: the score and ranking tables that ``pedrank rank --json/--csv`` writes
  (:func:`read_scores`, :func:`read_ranking_records`, the writers :func:`write_json`, :func:`write_csv_records`,
  :func:`write_csv_rows`);
- :mod:`~pedrank.workflow.io.config`: PED config files (:func:`read_ped_config`, :func:`write_ped_config`);
- :mod:`~pedrank.workflow.io.finetune`: fine-tuning's files (the ``.npz`` of ``pedrank finetune --data``, the
  ground-truth CSV, the learning curves, the long score table);
- :mod:`~pedrank.workflow.io.common`: :class:`FeatureFileError` and the number cells every table shares.

Every problem with a file raises :class:`FeatureFileError` (or a subclass), a ``ValueError`` whose message starts
with the file's path.
"""

from __future__ import annotations

from pedrank.workflow.io.common import BASELINE_PREFIX as BASELINE_PREFIX
from pedrank.workflow.io.common import FeatureFileError as FeatureFileError
from pedrank.workflow.io.common import PathLike as PathLike
from pedrank.workflow.io.common import parse_float as parse_float
from pedrank.workflow.io.config import read_ped_config as read_ped_config
from pedrank.workflow.io.config import write_ped_config as write_ped_config
from pedrank.workflow.io.features import ARCHIVE_SUFFIXES as ARCHIVE_SUFFIXES
from pedrank.workflow.io.features import FEATURE_SUFFIX as FEATURE_SUFFIX
from pedrank.workflow.io.features import LABEL_SUFFIX as LABEL_SUFFIX
from pedrank.workflow.io.features import MULTI_WORD_DATASETS as MULTI_WORD_DATASETS
from pedrank.workflow.io.features import REFERENCE_STEM_SUFFIX as REFERENCE_STEM_SUFFIX
from pedrank.workflow.io.features import TORCH_SUFFIXES as TORCH_SUFFIXES
from pedrank.workflow.io.features import FeatureSource as FeatureSource
from pedrank.workflow.io.features import find_authors_layout as find_authors_layout
from pedrank.workflow.io.features import find_features as find_features
from pedrank.workflow.io.features import known_datasets as known_datasets
from pedrank.workflow.io.features import load_features as load_features
from pedrank.workflow.io.features import load_reference as load_reference
from pedrank.workflow.io.features import split_authors_name as split_authors_name
from pedrank.workflow.io.finetune import CURVE_COLUMNS as CURVE_COLUMNS
from pedrank.workflow.io.finetune import SCORE_COLUMNS as SCORE_COLUMNS
from pedrank.workflow.io.finetune import read_curves as read_curves
from pedrank.workflow.io.finetune import read_finetune_data as read_finetune_data
from pedrank.workflow.io.finetune import read_score_table as read_score_table
from pedrank.workflow.io.finetune import score_label as score_label
from pedrank.workflow.io.finetune import write_accuracy_table as write_accuracy_table
from pedrank.workflow.io.finetune import write_curve_table as write_curve_table
from pedrank.workflow.io.finetune import write_score_table as write_score_table
from pedrank.workflow.io.scores import read_ranking_records as read_ranking_records
from pedrank.workflow.io.scores import read_scores as read_scores
from pedrank.workflow.io.scores import write_csv_records as write_csv_records
from pedrank.workflow.io.scores import write_csv_rows as write_csv_rows
from pedrank.workflow.io.scores import write_json as write_json
from pedrank.workflow.io.truth import BASELINE_COLUMNS as BASELINE_COLUMNS
from pedrank.workflow.io.truth import Truth as Truth
from pedrank.workflow.io.truth import TruthFileError as TruthFileError
from pedrank.workflow.io.truth import check_accuracies as check_accuracies
from pedrank.workflow.io.truth import read_accuracies as read_accuracies
from pedrank.workflow.io.truth import read_baseline as read_baseline
from pedrank.workflow.io.truth import read_truth as read_truth

__all__ = [
    "FeatureFileError",
    "FeatureSource",
    "find_features",
    "known_datasets",
    "load_features",
    "load_reference",
    "read_accuracies",
    "read_scores",
    "split_authors_name",
]
