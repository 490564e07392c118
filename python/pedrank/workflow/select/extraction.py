"""One model's features: every requested layer read from the cache when its key matches, the others extracted in
one pass over the data (:func:`pedrank.extract_features` on the wrapper of
:mod:`pedrank.workflow.select.forward`) and written to the cache."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from pedrank.workflow.select.batches import Batches
from pedrank.workflow.select.cache import (
    cache_paths,
    cache_read,
    cache_write,
    hub_weights,
    key_needs_model,
    spec_files,
    weights_changed,
)
from pedrank.workflow.select.common import describe, require_torch
from pedrank.workflow.select.data import Data, bad_image_error
from pedrank.workflow.select.forward import ForwardRaised, all_layers, forward_error, hidden_count, make_wrapper
from pedrank.workflow.select.models import load_model

__all__ = ["row_name", "extract_model"]


def row_name(model: str, layer: Any, explicit: bool) -> str:
    """A row's name: the model's, or ``MODEL@LAYER`` when layers were asked for.

    Parameters
    ----------
    model : str
        The model's name.
    layer : object
        The layer (a submodule name, a hidden-state index, or None).
    explicit : bool
        Whether ``layers=`` was given.

    Returns
    -------
    str
    """
    return model if not explicit else f"{model}@{layer}"


def extract_model(name: str, spec: Any, data: Data, layers: Any, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Extract (or read from the cache) every requested layer of one model.

    Parameters
    ----------
    name : str
        The model's name (its rows are named after it).
    spec : object
        The model's spec (:func:`~pedrank.workflow.select.models.load_model`).
    data : Data
        The samples, already cut to ``max_samples``.
    layers : None, list or "all"
        As :func:`pedrank.select` takes them (a single name already in a list).
    options : dict
        ``cache_dir`` (Path or None), ``batch_size``, ``device``, ``dtype``, ``pooling``, ``image_size``,
        ``pretrained``, ``progress``, ``bad_images``, and optionally ``on_batch``.

    Returns
    -------
    list of dict
        One per layer: ``name``, ``features`` (N, D), ``labels`` (N,), ``cached``, ``extract_seconds``,
        ``skipped`` (the ``(file, reason)`` pairs left out; N is the samples less those).

    Raises
    ------
    BadImageError
        An unreadable image file, also when a cache entry records one and ``bad_images`` is "raise" (a fresh run
        would meet it).
    PedrankValueError
        The model cannot be loaded, or rejects the input ("incompatible input of shape ...").
    """
    torch = require_torch()
    cache_dir = options["cache_dir"]
    pooling, dtype_name = options["pooling"], options["dtype"]
    base_key = {"model": describe(spec) if not isinstance(spec, (str, os.PathLike)) else str(spec),
                "dataset": data.name, "data": data.fingerprint, "pooling": pooling, "dtype": dtype_name,
                "pretrained": options["pretrained"] if hub_weights(spec) else None,
                "image_size": options["image_size"]}
    base_key["files"] = spec_files(spec)
    explicit = layers is not None
    wanted: list[Any] = [None] if layers is None else list(layers) if not isinstance(layers, str) or layers != "all" \
        else ["all"]
    loaded = None
    if wanted == ["all"]:
        loaded = load_model(spec, pretrained=options["pretrained"], image_size=options["image_size"])
        if loaded.kind == "torch":
            wanted = all_layers(loaded.module)
        else:
            count = hidden_count(loaded)
            wanted = list(range(count))
    results: dict[Any, dict[str, Any]] = {}
    missing = []
    # The preprocessing (and, for a module or a callable, the hash of its weights) is part of the key; it is known
    # once the model is loaded. For hub names, checkpoint files and local hf: folders the spec and its files'
    # digests determine it, so a first look at the cache needs no loading (the key records it).
    for layer in wanted:
        row = row_name(name, layer, explicit)
        key_file = cache_paths(cache_dir, row, data.name)[2] if cache_dir is not None else None
        stored_key = None
        if key_file is not None and key_file.is_file():
            try:
                stored_key = json.loads(key_file.read_text()).get("key")
            except (OSError, ValueError):
                stored_key = None
        if stored_key is not None and {k: stored_key.get(k) for k in base_key} == base_key \
                and stored_key.get("layer") == describe(layer) and loaded is None \
                and not key_needs_model(spec) and not weights_changed(spec, stored_key):
            hit = cache_read(cache_dir, row, data.name, stored_key)
            if hit is not None:
                results[layer] = {"name": row, "features": hit[0], "labels": hit[1], "cached": True,
                                  "extract_seconds": 0.0, "skipped": hit[2]}
                continue
        missing.append(layer)
    if missing:
        if loaded is None:
            loaded = load_model(spec, pretrained=options["pretrained"], image_size=options["image_size"])
        key_base = dict(base_key, preprocessing=loaded.preprocessing)
        # A local module or callable (its weights hashed once loaded): its cache entry is checked with the full key.
        still = []
        for layer in missing:
            row = row_name(name, layer, explicit)
            key = dict(key_base, layer=describe(layer))
            hit = cache_read(cache_dir, row, data.name, key)
            if hit is not None:
                results[layer] = {"name": row, "features": hit[0], "labels": hit[1], "cached": True,
                                  "extract_seconds": 0.0, "skipped": hit[2]}
            else:
                still.append(layer)
        if still:
            from pedrank.workflow.extract import extract_features

            dtype = None if dtype_name in (None, "float32") else getattr(torch, dtype_name)
            wrapper = make_wrapper(loaded, still, pooling, options["device"], dtype)
            batches = Batches(data, loaded, options["batch_size"], options["image_size"], desc=name,
                               progress=options["progress"], on_batch=options.get("on_batch"),
                               bad_images=options.get("bad_images", "raise"))
            start = time.perf_counter()
            try:
                features, labels = extract_features(wrapper, batches, layer="out", capture="output",
                                                    device=options["device"], progress=False)
            except ForwardRaised as raised:
                raise forward_error(raised, len(batches)) from raised.error
            seconds = time.perf_counter() - start
            offset = 0
            for layer, width in zip(still, wrapper.widths):
                row = row_name(name, layer, explicit)
                part = np.ascontiguousarray(features[:, offset:offset + width])
                offset += width
                key = dict(key_base, layer=describe(layer))
                cache_write(cache_dir, row, data.name, key, part, labels, batches.skipped)
                results[layer] = {"name": row, "features": part, "labels": labels, "cached": False,
                                  "extract_seconds": seconds / len(still), "skipped": list(batches.skipped)}
    if options.get("bad_images", "raise") == "raise":
        for layer in wanted:
            if results[layer]["skipped"]:
                raise bad_image_error(data, *results[layer]["skipped"][0])
    return [results[layer] for layer in wanted]
