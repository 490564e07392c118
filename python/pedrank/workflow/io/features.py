"""Feature files and PED's reference statistics: reading them, and finding a pool's files in a folder.

Feature files, one model each:

- the PED/SFDA authors' layout: ``{model}_{dataset}_feature.npy`` beside ``{model}_{dataset}_label.npy``
  (one directory may hold several datasets; see :func:`split_authors_name` for how a name whose model or dataset
  holds underscores, such as ``vit_b16_oxford_pets_feature.npy``, is split);
- ``.npz`` archives holding the arrays ``features`` (N x D) and ``labels`` (N,);
- torch files (``.pt``/``.pth``) holding a dict with the tensors (or arrays) ``features`` and ``labels``;
  reading them imports torch, which pedrank otherwise never needs;
- a plain ``.npy`` of features, when the labels are given separately.

PED's rescaling statistics can be given per model in a file ``{model}_reference.npy`` (reference features,
M x D), ``{model}_reference.npz`` (either ``features``, or ``mean`` and ``std``) or ``{model}_reference.pt``,
next to the model's features. Without one, PED uses the target features' own statistics.

Every problem with a file raises :class:`FeatureFileError`, a ``ValueError`` whose message starts with the
file's path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pedrank._engine.validation import to_numpy
from pedrank.workflow.io.common import FeatureFileError, PathLike

__all__ = [
    "FeatureSource",
    "find_authors_layout",
    "find_features",
    "known_datasets",
    "load_features",
    "load_reference",
    "split_authors_name",
]

FEATURE_SUFFIX = "_feature.npy"
LABEL_SUFFIX = "_label.npy"
REFERENCE_STEM_SUFFIX = "_reference"
TORCH_SUFFIXES = (".pt", ".pth")
ARCHIVE_SUFFIXES = (".npz",) + TORCH_SUFFIXES

#: Dataset names holding an underscore that feature files commonly carry (the spellings of torchvision, TFDS and
#: the transferability benchmarks). ``{model}_{dataset}`` cannot be split from the name alone once both parts may
#: hold underscores, so these are recognised at the end of a name; see :func:`split_authors_name`.
MULTI_WORD_DATASETS = (
    "oxford_pets",
    "oxford_iiit_pet",
    "oxford_flowers",
    "oxford_flowers102",
    "stanford_cars",
    "stanford_dogs",
    "fgvc_aircraft",
    "caltech_101",
    "cifar_10",
    "cifar_100",
    "food_101",
    "sun_397",
    "voc_2007",
    "pascal_voc",
    "cub_200",
    "cub_200_2011",
)


# ---------------------------------------------------------------------------------------------- loading


def _to_numpy(value: Any, path: Path, key: str) -> np.ndarray:
    try:
        return to_numpy(value)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is a bad file
        raise FeatureFileError(path, f"{key!r} is not an array ({type(value).__name__}): {exc}") from exc


def _load_npy(path: Path, *, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise FeatureFileError(path, "no such file")
    try:
        # Memory-mapping keeps a 10 GB feature file off the heap until a score reads it.
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FeatureFileError(path, f"not a readable .npy array ({exc})") from exc


def _load_archive(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz or torch file, by key."""
    if not path.is_file():
        raise FeatureFileError(path, "no such file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (ValueError, OSError, EOFError) as exc:
            raise FeatureFileError(path, f"not a readable .npz archive ({exc})") from exc
    try:
        import torch
    except ImportError as exc:
        raise FeatureFileError(path, "reading torch files needs torch (pip install torch)") from exc
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise FeatureFileError(path, f"not a readable torch file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, Mapping):
        raise FeatureFileError(
            path, f"expected a dict of tensors (keys 'features' and 'labels'), found {type(content).__name__}"
        )
    return {str(key): _to_numpy(value, path, str(key)) for key, value in content.items()}


def _require_keys(arrays: Mapping[str, np.ndarray], keys: Iterable[str], path: Path) -> None:
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise FeatureFileError(
            path, f"missing {', '.join(repr(k) for k in missing)}; found keys {sorted(arrays)}"
        )


def _check_pair(features: np.ndarray, labels: np.ndarray, path: Path) -> None:
    if features.ndim not in (1, 2):
        raise FeatureFileError(
            path,
            f"features must be 2-D (N x D), or 1-D source-model predictions for NCE, found shape {features.shape}",
        )
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise FeatureFileError(
            path,
            f"labels must be 1-D with one label per row of the features ({features.shape[0]}), "
            f"found shape {labels.shape}",
        )


def load_features(path: PathLike, labels: PathLike | None = None, *,
                  default_labels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one model's features and labels.

    Parameters
    ----------
    path : str or path-like
        ``{model}_{dataset}_feature.npy`` (labels read from the ``_label.npy`` beside it), an ``.npz`` or torch
        file holding ``features`` and ``labels``, or a plain ``.npy`` of features with ``labels`` given.
    labels : str or path-like, optional
        A ``.npy`` file of labels; overrides the labels that ``path`` would provide.
    default_labels : array_like of shape (N,), optional
        The labels of a plain ``.npy`` of features, which holds none (:func:`pedrank.rank`'s ``labels=``); a file
        that holds or names its own labels keeps them.

    Returns
    -------
    features : ndarray of shape (N, D), or (N,)
        Memory-mapped read-only for ``.npy`` files. A 1-D array (a source model's hard predictions, which NCE
        scores) is accepted here; the feature scores refuse it with the model's name.
    labels : ndarray of shape (N,)

    Raises
    ------
    FeatureFileError
        The file is missing, unreadable, lacks a key, or its shapes disagree; the message names the file.
    """
    path = Path(path)
    if path.suffix in ARCHIVE_SUFFIXES:
        arrays = _load_archive(path)
        _require_keys(arrays, ["features"] if labels is not None else ["features", "labels"], path)
        features = arrays["features"]
        label_array = arrays.get("labels") if labels is None else _load_npy(Path(labels), mmap=False)
    elif path.suffix == ".npy":
        features = _load_npy(path, mmap=True)
        if labels is not None:
            label_array = _load_npy(Path(labels), mmap=False)
        elif path.name.endswith(FEATURE_SUFFIX):
            label_path = path.with_name(path.name[: -len(FEATURE_SUFFIX)] + LABEL_SUFFIX)
            if not label_path.is_file():
                raise FeatureFileError(path, f"its labels file {label_path.name} is missing")
            label_array = _load_npy(label_path, mmap=False)
        elif default_labels is not None:
            label_array = to_numpy(default_labels)
        else:
            raise FeatureFileError(
                path, f"a plain .npy holds no labels: name it *{FEATURE_SUFFIX} beside *{LABEL_SUFFIX}, or give labels"
            )
    else:
        raise FeatureFileError(
            path, f"unknown feature file type {path.suffix!r}; expected .npy, .npz, .pt or .pth"
        )
    assert label_array is not None
    _check_pair(features, label_array, path)
    return features, label_array


def load_reference(path: PathLike) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Read PED's reference statistics: reference features (M x D) or a ``(mean, std)`` pair.

    ``.npy``: reference features. ``.npz``/torch: ``mean`` and ``std`` (population std, per dimension), or
    ``features``.
    """
    path = Path(path)
    if path.suffix == ".npy":
        array = _load_npy(path, mmap=True)
        if array.ndim != 2:
            raise FeatureFileError(path, f"reference features must be 2-D (M x D), found shape {array.shape}")
        return array
    if path.suffix in ARCHIVE_SUFFIXES:
        arrays = _load_archive(path)
        if "mean" in arrays and "std" in arrays:
            mean, std = np.asarray(arrays["mean"]), np.asarray(arrays["std"])
            if mean.ndim != 1 or mean.shape != std.shape:
                raise FeatureFileError(
                    path, f"mean and std must be 1-D of the same length, found {mean.shape} and {std.shape}"
                )
            return mean, std
        if "features" in arrays:
            return arrays["features"]
        raise FeatureFileError(path, f"expected 'mean' and 'std', or 'features'; found keys {sorted(arrays)}")
    raise FeatureFileError(path, f"unknown reference file type {path.suffix!r}; expected .npy, .npz, .pt or .pth")


# ---------------------------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class FeatureSource:
    """One model's features on disk, read only when :meth:`load` is called.

    Attributes
    ----------
    model : str
    path : pathlib.Path
        The features file.
    labels_path : pathlib.Path or None
        A separate labels file, when the features file has none of its own.
    dataset : str or None
        The dataset named in the authors' layout (see :func:`split_authors_name`).
    reference_path : pathlib.Path or None
        PED's reference statistics for this model, when present.
    """

    model: str
    path: Path
    labels_path: Path | None = None
    dataset: str | None = None
    reference_path: Path | None = None

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(features, labels)``; see :func:`load_features`."""
        return load_features(self.path, self.labels_path)

    def load_reference(self) -> np.ndarray | tuple[np.ndarray, np.ndarray] | None:
        """The reference statistics, or None when this model has none."""
        return None if self.reference_path is None else load_reference(self.reference_path)

    def __str__(self) -> str:
        return str(self.path)


def _reference_beside(directory: Path, model: str) -> Path | None:
    for suffix in (".npy",) + ARCHIVE_SUFFIXES:
        candidate = directory / f"{model}{REFERENCE_STEM_SUFFIX}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def known_datasets() -> tuple[str, ...]:
    """The dataset names recognised at the end of an authors'-layout file name, longest first.

    The PED paper's datasets (:func:`pedrank.workflow.paper.datasets`: ``aircraft``, ``cars``, ``pets``, ...) and
    :data:`MULTI_WORD_DATASETS` (``oxford_pets``, ``stanford_cars``, ...).
    """
    from pedrank.workflow import paper

    return tuple(sorted(set(paper.datasets()) | set(MULTI_WORD_DATASETS), key=lambda name: (-len(name), name)))


def split_authors_name(stem: str, dataset: str | None = None) -> tuple[str, str] | None:
    """Split the stem of an authors'-layout file name, ``{model}_{dataset}``, into ``(model, dataset)``.

    Both parts may hold underscores (``vit_b16_oxford_pets``), so the split follows one rule, the same for every
    file of a folder:

    1. The dataset is the longest name that the stem ends with (after an ``_``, leaving a non-empty model) among
       :func:`known_datasets` and ``dataset`` when given: ``vit_b16_oxford_pets`` is ``vit_b16`` on
       ``oxford_pets``, ``deep_cluster_cifar10`` is ``deep_cluster`` on ``cifar10``, and with
       ``dataset="my_data"``, ``vit_b16_my_data`` is ``vit_b16`` on ``my_data``.
    2. Otherwise the dataset is the part after the last ``_``: ``vit_b16_my_data`` without ``dataset`` is
       ``vit_b16_my`` on ``data``. Give a dataset name with underscores that pedrank does not know as ``dataset``.

    A longer known name wins over ``dataset``: with ``dataset="pets"``, ``vit_oxford_pets`` is still ``vit`` on
    ``oxford_pets`` (so it is not taken for a model ``vit_oxford`` on ``pets``).

    Parameters
    ----------
    stem : str
        The file name without ``_feature.npy`` (or ``_label.npy``).
    dataset : str, optional
        The dataset the caller asked for, recognised like a known name.

    Returns
    -------
    tuple of (str, str), or None
        ``(model, dataset)``; None when the stem holds no ``_`` with text on both sides.
    """
    candidates = set(known_datasets())
    if dataset:
        candidates.add(dataset)
    matches = [name for name in candidates if len(stem) > len(name) + 1 and stem.endswith("_" + name)]
    if matches:
        name = max(matches, key=len)
        return stem[: -len(name) - 1], name
    model, _, last = stem.rpartition("_")
    return (model, last) if model and last else None


def _authors_name(path: Path, dataset: str | None = None) -> tuple[str, str]:
    split = split_authors_name(path.name[: -len(FEATURE_SUFFIX)], dataset)
    if split is None:
        raise FeatureFileError(path, f"expected the name {{model}}_{{dataset}}{FEATURE_SUFFIX}")
    return split


def _source_for_file(path: Path, labels: Path | None, dataset: str | None = None) -> FeatureSource:
    if path.name.endswith(FEATURE_SUFFIX):
        model, dataset = _authors_name(path, dataset)
        label_path = path.with_name(f"{model}_{dataset}{LABEL_SUFFIX}")
        if labels is None and not label_path.is_file():
            raise FeatureFileError(path, f"its labels file {label_path.name} is missing")
        return FeatureSource(model, path, labels, dataset, _reference_beside(path.parent, model))
    if path.suffix in ARCHIVE_SUFFIXES:
        return FeatureSource(path.stem, path, labels, None, _reference_beside(path.parent, path.stem))
    if path.suffix == ".npy":
        if labels is None:
            raise FeatureFileError(
                path, f"a plain .npy holds no labels: name it *{FEATURE_SUFFIX} beside *{LABEL_SUFFIX}, or give labels"
            )
        return FeatureSource(path.stem, path, labels, None, _reference_beside(path.parent, path.stem))
    raise FeatureFileError(path, f"unknown feature file type {path.suffix!r}; expected .npy, .npz, .pt or .pth")


def _sources_in_directory(directory: Path, labels: Path | None, dataset: str | None) -> list[FeatureSource]:
    sources = []
    plain = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        is_authors = path.name.endswith(FEATURE_SUFFIX)
        is_archive = path.suffix in ARCHIVE_SUFFIXES and not path.stem.endswith(REFERENCE_STEM_SUFFIX)
        if is_authors or is_archive:
            sources.append(_source_for_file(path, labels, dataset))
        elif (path.suffix == ".npy" and not path.name.endswith(LABEL_SUFFIX)
              and not path.stem.endswith(REFERENCE_STEM_SUFFIX)
              and (labels is None or path.resolve() != labels.resolve())):
            plain.append(path.name)
    if labels is not None and plain:
        # Shared labels are meant for plain .npy features, which a directory scan does not read: ranking the
        # directory's other files would drop those models from the pool without a word.
        shown = ", ".join(plain[:5]) + (f", ... ({len(plain)} in all)" if len(plain) > 5 else "")
        raise FeatureFileError(
            directory,
            f"holds plain .npy file(s) ({shown}) that a directory scan does not read as models, beside the shared "
            "labels given; expected them as files (e.g. DIR/model.npy, each its own path) or named "
            f"{{model}}_{{dataset}}{FEATURE_SUFFIX}, so that no model is left out of the pool",
        )
    return sources


def find_features(
    paths: PathLike | Iterable[PathLike],
    *,
    dataset: str | None = None,
    labels: PathLike | None = None,
) -> dict[str, FeatureSource]:
    """Find the feature files of a pool of models: ``{model: FeatureSource}``, sorted by model name.

    Parameters
    ----------
    paths : path or iterable of paths
        Directories (scanned for ``*_feature.npy``, ``*.npz``, ``*.pt``, ``*.pth``; files named
        ``*_reference.*`` are reference statistics, not models) and/or feature files.
    dataset : str, optional
        In the authors' layout, keep only ``{model}_{dataset}_feature.npy``: the files whose name ends with
        ``_{dataset}_feature.npy``, the model being everything before (``dataset="oxford_pets"`` reads
        ``vit_b16_oxford_pets_feature.npy`` as the model ``vit_b16``). Required when the files found hold more
        than one dataset. Without it, each file's dataset is the longest known name its name ends with
        (:func:`known_datasets`: the PED paper's datasets and ``oxford_pets``, ``stanford_cars``, ...), else the
        part after the last ``_``; :func:`split_authors_name` gives the rule in full.
    labels : path, optional
        A labels ``.npy`` shared by every model (for plain ``.npy`` feature files).

    Raises
    ------
    FeatureFileError
        A path is missing, nothing usable was found, two files claim the same model, several datasets are
        present and ``dataset`` is not given, or ``labels`` is given and a directory holds plain ``.npy`` files
        (which a directory scan does not read: they would be left out of the pool).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    label_path = None if labels is None else Path(labels)
    sources: list[FeatureSource] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _sources_in_directory(path, label_path, dataset)
            if not found:
                raise FeatureFileError(
                    path,
                    f"no feature files found (expected {{model}}_{{dataset}}{FEATURE_SUFFIX} with "
                    f"{LABEL_SUFFIX}, .npz or .pt files)",
                )
            sources.extend(found)
        elif path.is_file():
            sources.append(_source_for_file(path, label_path, dataset))
        else:
            raise FeatureFileError(path, "no such file or directory")

    datasets_found = sorted({s.dataset for s in sources if s.dataset is not None})
    if dataset is not None:
        if dataset not in datasets_found:
            where = ", ".join(str(Path(p)) for p in paths)
            raise FeatureFileError(
                where, f"no features for dataset {dataset!r}; datasets found: {datasets_found or 'none'}"
            )
        sources = [s for s in sources if s.dataset is None or s.dataset == dataset]
    elif len(datasets_found) > 1:
        where = ", ".join(str(Path(p)) for p in paths)
        raise FeatureFileError(
            where, f"features for several datasets ({', '.join(datasets_found)}); pick one with --dataset/dataset= "
                   "(a dataset name with underscores that pedrank does not know, such as my_data, is read as the "
                   "part after the last '_' unless it is given whole there)"
        )

    pool: dict[str, FeatureSource] = {}
    for source in sources:
        if source.model in pool:
            raise FeatureFileError(
                source.path, f"model {source.model!r} is also given by {pool[source.model].path}"
            )
        pool[source.model] = source
    return dict(sorted(pool.items()))


def find_authors_layout(directory: PathLike) -> dict[tuple[str, str | None], FeatureSource]:
    """Every ``{model}_{dataset}_feature.npy`` in ``directory``: ``{(model, dataset): FeatureSource}``.

    Names are split by :func:`split_authors_name` without a ``dataset``: ``vit_b16_oxford_pets_feature.npy`` is
    ``("vit_b16", "oxford_pets")``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FeatureFileError(directory, "not a directory")
    found = {}
    for path in sorted(directory.glob(f"*{FEATURE_SUFFIX}")):
        source = _source_for_file(path, None)
        found[(source.model, source.dataset)] = source
    return found
