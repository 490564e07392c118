"""From models and data to a ranked pool in one call: :func:`select` (and ``pedrank select``).

Each model of the pool is loaded (``timm:NAME``, ``torchvision:NAME``, ``hf:NAME_OR_PATH``, a local torch module,
a ``module:callable``, a checkpoint file, or ``ARCH@CHECKPOINT``), run over the data with its own preprocessing
through :func:`pedrank.extract_features`, and its features are cached on disk in the authors' layout
(``{model}_{dataset}_feature.npy`` beside ``_label.npy``, with a ``_key.json`` sidecar holding what they were
computed from: model, dataset fingerprint, layer and preprocessing). A second run reads the cache; an interrupted
run resumes at the first model without a complete cache entry. Then every model is scored (any metric
:func:`pedrank.rank` takes, with or without PED) and the pool is ranked. A model that cannot be loaded or run
gets a row with the reason; the others are ranked. An image file that cannot be read is bad input, the same for
every model: it raises :class:`BadImageError` naming the file, or with ``bad_images="skip"`` it is left out
(its label too) for every model, with a :class:`BadImageWarning` naming it.

One model is one task: pass ``executor=`` (any ``concurrent.futures.Executor``) or ``client=`` (a
``dask.distributed.Client``) and each task extracts, caches and scores its model where it runs, returning only
its row. torch, timm, torchvision, transformers and dask are imported only when needed.

The package, by concern (each module's own docstring says more):

- ``data``: the target data read into a :class:`~pedrank.workflow.select.data.Data` (image folder, ``.npz``,
  CSV of texts, Hugging Face dataset, arrays), :class:`BadImageError` / :class:`BadImageWarning`;
- ``models``: :func:`load_model` per library (timm, torchvision, Hugging Face, local modules, callables and
  checkpoints) and the rows' names;
- ``batches``: one model's input batches from the data (images opened and transformed, texts tokenized);
- ``forward``: the wrapper that runs a model and pools the requested layers, and how its failures are reported;
- ``cache``: the feature cache in the authors' layout, written atomically;
- ``extraction``: one model's layers, from the cache or extracted;
- ``tasks``: one task per model (extract, cache, score) on an executor or Dask, the tasks' outputs gathered;
- ``records``: :class:`SelectRecord` and :class:`SelectTable`;
- ``common``: torch on demand, safe file names, digests.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pedrank._engine.validation import PedrankValueError
from pedrank.workflow.select.cache import CACHE_KEY_SUFFIX
from pedrank.workflow.select.cache import CACHE_VERSION as CACHE_VERSION
from pedrank.workflow.select.common import PathLike, safe_name, short_reason
from pedrank.workflow.select.data import BAD_IMAGES, BadImageError, BadImageWarning, load_data
from pedrank.workflow.select.data import IMAGE_SUFFIXES as IMAGE_SUFFIXES
from pedrank.workflow.select.data import Data as Data
from pedrank.workflow.select.forward import POOLINGS
from pedrank.workflow.select.models import CHECKPOINT_SUFFIXES as CHECKPOINT_SUFFIXES
from pedrank.workflow.select.models import LoadedModel as LoadedModel
from pedrank.workflow.select.models import load_callable as load_callable
from pedrank.workflow.select.models import load_model, model_name
from pedrank.workflow.select.records import SelectRecord, SelectTable
from pedrank.workflow.select.tasks import executor_from, is_dask, model_task, score_pool, warn_skipped

__all__ = ["select", "SelectRecord", "SelectTable", "load_model", "load_data", "CACHE_KEY_SUFFIX", "BadImageError",
           "BadImageWarning", "BAD_IMAGES"]


def select(
    models: Sequence[Any] | Mapping[str, Any],
    data: Any,
    *,
    metric: str | None = None,
    ped: bool | Mapping[str, Any] | PathLike = False,
    layers: Any = None,
    cache_dir: PathLike | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    dtype: str | None = None,
    pooling: str = "mean",
    image_size: int | None = None,
    pretrained: bool = True,
    max_samples: int | None = None,
    dataset: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    bad_images: str = "raise",
    backend: str = "auto",
    executor: Any = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    confidence: int | None = None,
    random_state: Any = None,
    **metric_options: Any,
) -> SelectTable:
    """Extract features of a pool of models on a dataset, score them and rank them, best first.

    Parameters
    ----------
    models : sequence or mapping of model specs
        Each spec is one of: ``"timm:NAME"`` (timm's architecture with its pretrained weights and its data
        config's preprocessing), ``"torchvision:NAME"`` (the DEFAULT weights and their transforms),
        ``"hf:NAME_OR_PATH"`` (transformers ``AutoModel`` with its image processor or tokenizer; a
        sentence-transformers folder gives its sentence embedding), ``"MODULE:CALLABLE"`` or
        ``"path/file.py:CALLABLE"`` (a callable returning an ``nn.Module``), a checkpoint file (a whole module
        saved with ``torch.save``), ``"ARCH@CHECKPOINT"`` (the architecture ARCH, any of the forms above, built
        without pretrained weights, then the state_dict in CHECKPOINT loaded: the offline way to use hub
        architectures), an ``nn.Module``, or a zero-argument callable returning one. A mapping gives the names
        of the rows; otherwise they are derived from the specs.
    data : path or (inputs, labels)
        An image folder (one sub-folder per class), an ``.npz`` with ``images`` (n, H, W[, C]) or ``inputs`` /
        ``features`` (n, ...) and ``labels``, a CSV of texts and labels (columns ``text`` and ``label``, or the
        first and last), a Hugging Face ``datasets`` folder (``save_to_disk``), or an ``(inputs, labels)`` pair.
        Local torch modules receive array inputs as stored (uint8 scaled to [0, 1]) and image files as float
        tensors (N, 3, H, W) in [0, 1].
    metric, ped, backend, **metric_options
        As for :func:`pedrank.rank` (None, the default: the recommended score; any metric name, including forms
        such as ``"logme:exact"``; PED as a bool, a dict of options or a ``pedrank tune`` config file).
    confidence, random_state
        As for :func:`pedrank.rank`: B stratified bootstrap resamples of the target rows, every model rescored on
        each (P(best), rank and score intervals, top-1 stability as columns). The models' features are then scored
        together after extraction, in this process, instead of in each model's task. An integer ``random_state``
        also reaches a metric that takes a ``random_state`` of its own (nleep, pactran, parc, etran), with or
        without ``confidence``, as :func:`pedrank.rank` passes it on.
    layers : None, str, int, list or "all"
        None: the input of the model's last ``nn.Linear`` (the penultimate features; for ``hf:`` models the last
        hidden state). A submodule name (or hidden-state index for ``hf:``) or a list of them: one row per layer,
        named ``MODEL@LAYER``. ``"all"``: every block of the model (its longest ``Sequential``/``ModuleList``;
        every hidden state of an ``hf:`` model), to rank the layers of one model.
    cache_dir : path, optional
        Where features are kept, in the authors' layout ``{model}_{dataset}_feature.npy`` + ``_label.npy``
        (so ``pedrank rank CACHE_DIR --dataset DATASET`` reads them), with a ``{model}_{dataset}_key.json``
        recording the model (the digests of the files its spec names; for a module, a callable or
        ``MODULE:CALLABLE``, a hash of the loaded module's parameters and buffers, so changed weights miss even
        when the callable reads them from a file of its own), the data's fingerprint (with the columns read,
        ``text_column``/``label_column``, and the ``max_samples`` cut), the layer, pooling, dtype and
        preprocessing. A matching entry is read instead of extracted (a model keyed by its weights' hash is
        loaded to check them, nothing extracted); files are written atomically (temporary file, then rename), so
        an interrupted run resumes with the models it had finished.
    batch_size, device, dtype, pooling, image_size
        The forward passes: ``dtype`` one of float32 (default), float16, bfloat16; ``pooling`` of token/patch
        outputs (N, T, D) and maps (N, C, H, W): "mean" (default; mask-aware for text), "cls", "max",
        "flatten"; ``image_size`` resizes images (and overrides timm's/torchvision's input size).
    pretrained : bool, default True
        Hub weights for ``timm:``/``torchvision:`` names (False: the architecture's random initialisation).
    max_samples : int, optional
        A stratified subset of ``max_samples`` samples, for every kind of data: each class keeps its share (at
        least one sample each when ``max_samples`` is at least the number of classes), the rows drawn within each
        class with a fixed seed, so every model, and every run, sees the same rows (in the data's order). The cache
        key records the cut.
    dataset : str, optional
        The dataset's name in the table and the cache (default: the data's file or folder name).
    bad_images : {"raise", "skip"}, default "raise"
        An image file of the folder that cannot be read (corrupt, truncated, not an image): "raise" raises
        :class:`BadImageError` naming it; "skip" leaves it out, with its label, for every model alike (a cached
        entry records the files it left out, so cached and fresh rows agree) and warns once
        (:class:`BadImageWarning`) with their number and names (also in the table's ``skipped``).
    executor, client, scheduler
        Spread the pool: one task per model (extraction, cache and score where it runs; only the row comes
        back). ``executor``: any ``concurrent.futures.Executor``; ``client``: a ``dask.distributed.Client``;
        ``scheduler``: the address of a Dask scheduler (``tcp://host:8786``) to connect to. The models, the data
        path and the cache directory must be reachable from the workers.
    progress : bool or None
        A progress bar per model over its batches (None: on a terminal, after a second).

    Returns
    -------
    SelectTable
        A :class:`pedrank.RankTable` of :class:`SelectRecord`, best first; models that failed come last with
        a NaN score and their ``error``: one that cannot be loaded, rejects the input ("incompatible input of
        shape ...", with the model's message), or fails inside its own forward (the model's exception type and
        message).

    Raises
    ------
    PedrankValueError
        A bad argument or unreadable data; :class:`BadImageError` (a subclass) for an image file that cannot be
        read, with ``bad_images="raise"``.
    """
    if metric is None:  # as pedrank.rank and the command line: the recommended score
        from pedrank.workflow.recommendation import RECOMMENDED

        metric = RECOMMENDED.metric
    if isinstance(models, Mapping):
        items = [(str(name), spec) for name, spec in models.items()]
    elif isinstance(models, (str, os.PathLike)) or not isinstance(models, Sequence):
        items = [(model_name(models, 0), models)]
    else:
        items = [(model_name(spec, i), spec) for i, spec in enumerate(models)]
    if not items:
        raise PedrankValueError("models: empty; expected at least one model")
    names = [name for name, _ in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PedrankValueError(f"models: the names {duplicates} appear more than once; give a mapping of names")
    if pooling not in POOLINGS:
        raise PedrankValueError(f"pooling: found {pooling!r}; expected one of {', '.join(POOLINGS)}")
    if dtype not in (None, "float32", "float16", "bfloat16"):
        raise PedrankValueError(f"dtype: found {dtype!r}; expected float32, float16 or bfloat16")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise PedrankValueError(f"batch_size: found {batch_size!r}; expected a positive integer")
    if bad_images not in BAD_IMAGES:
        raise PedrankValueError(f"bad_images: found {bad_images!r}; expected one of {', '.join(BAD_IMAGES)}")
    if isinstance(layers, str) and layers != "all":
        layers = [layers]
    elif isinstance(layers, int):
        layers = [layers]
    from pedrank.scores.registry import resolve_metric

    entry, _ = resolve_metric(metric, dict(metric_options))
    from pedrank._engine.validation import check_int

    if confidence is not None:
        confidence = check_int(confidence, name="confidence", minimum=1)
    if max_samples is not None:
        max_samples = check_int(max_samples, name="max_samples", minimum=1)
    # As pedrank.rank: an integer seed seeds the bootstrap and reaches a metric that takes a random_state of its own
    # (nleep, pactran, parc, etran), with or without confidence; a Generator seeds the bootstrap only.
    from pedrank.workflow.rank import check_seed

    metric_seed = None if random_state is None or hasattr(random_state, "integers") else check_seed(random_state)
    # Pool-relative metrics, and the bootstrap (every model rescored on the same resampled rows), score the pool's
    # features together after extraction; the others score each model in its own task.
    pool_metric = entry.pool is not None or confidence is not None
    data_options = {"dataset": dataset, "text_column": text_column, "label_column": label_column}
    # Fail early on the data (the same for every model), and name the dataset.
    local_data = load_data(data, **data_options)
    dataset_name = local_data.name
    task_data = data if isinstance(data, (str, os.PathLike)) else local_data
    options = {"cache_dir": None if cache_dir is None else str(cache_dir), "batch_size": batch_size,
               "device": device, "dtype": dtype, "pooling": pooling, "image_size": image_size,
               "pretrained": pretrained, "max_samples": max_samples, "progress": progress,
               "bad_images": bad_images}
    score_options = None if pool_metric else {"metric": metric, "ped": ped, "backend": backend,
                                              "dataset": dataset_name, "progress": False,
                                              "random_state": metric_seed, **metric_options}
    runner, owned = executor_from(client, executor, scheduler)
    outputs: list[Any] = []
    try:
        if runner is None:
            for name, spec in items:
                outputs.append(model_task(name, spec, task_data, layers, options, score_options, data_options))
        else:
            dask = is_dask(runner)
            futures = [runner.submit(model_task, name, spec, task_data, layers, options, score_options, data_options,
                                     **({"pure": False, "key": f"pedrank-select-{safe_name(name)}-{os.getpid()}-"
                                                                f"{time.time_ns()}"} if dask else {}))
                       for name, spec in items]
            for (name, _), future in zip(items, futures):
                try:
                    outputs.append(future.result())
                except BadImageError:
                    for other in futures:
                        other.cancel()
                    raise
                except Exception as exc:  # a worker lost, a task that could not be sent
                    outputs.append(([SelectRecord(name, float("nan"), 0.0, None, error=f"task: {short_reason(exc)}")],
                                    None))
    finally:
        if owned:
            runner.close()
    skipped = warn_skipped([name for name, _ in items], [found for _, found in outputs], local_data,
                            max_samples)
    outputs = [output for output, _ in outputs]
    records: list[SelectRecord] = []
    bootstrap: dict[str, Any] = {}
    if pool_metric:
        records = score_pool(outputs, metric, ped, backend, dataset_name, metric_options, confidence,
                              random_state, bootstrap)
    else:
        for output in outputs:
            records.extend(output)

    def best_first(i: int) -> tuple[bool, float, int]:
        value = records[i].score
        return (math.isnan(value), 0.0 if math.isnan(value) else -value, i)

    ordered = [records[i] for i in sorted(range(len(records)), key=best_first)]
    from pedrank.scores.scoring import ped_options as parse_ped_options

    with_ped = ped is not False and not isinstance(ped, (str, os.PathLike)) and parse_ped_options(ped) is not None
    if isinstance(ped, (str, os.PathLike)):
        from pedrank.workflow.tune import read_ped_config

        with_ped = read_ped_config(ped, metric) not in (False, None)
    return SelectTable(ordered, metric=metric, ped=with_ped, dataset=dataset_name, skipped=skipped, **bootstrap)
