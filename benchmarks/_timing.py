"""What the interleaved timing scripts share (knn_speed.py, lead_itm_speed.py, knn_profile.py): the 1-minute load, a
timed call, an earlier copy of a score module loaded beside this tree's, and the one JSON line each script prints.

The scripts put benchmarks/ first on sys.path and import this as ``_timing``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time


def load():
    """The 1-minute load average."""
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def timed(call):
    """``(wall seconds, CPU seconds of this process, value)`` of ``call()``."""
    start, cpu = time.perf_counter(), time.process_time()
    value = call()
    return time.perf_counter() - start, time.process_time() - cpu, value


def load_module(name, path, replace=None):
    """Execute an earlier copy of a score module without registering its score again; ``replace`` maps module
    names to modules seen by its imports while it loads (so the earlier ITM imports the earlier LEAD's helpers)."""
    from pedrank.scores import registry

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    register, registry.register = registry.register, lambda entry: entry
    saved = {key: sys.modules.get(key) for key in (replace or {})}
    sys.modules.update(replace or {})
    try:
        spec.loader.exec_module(module)
    finally:
        registry.register = register
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return module


def emit(result, json_path=None):
    """Print ``result`` as one JSON line and, when ``json_path`` is given, append the line to that file."""
    line = json.dumps(result)
    print(line)
    if json_path:
        with open(json_path, "a") as handle:
            handle.write(line + "\n")
