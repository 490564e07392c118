"""Benchmark features: float32, non-negative (like post-ReLU embeddings), clustered by class, fixed seed."""

import numpy as np

SHAPES = {
    # name: (n_samples, n_features, n_classes)
    "small": (2_000, 128, 20),
    "large": (50_000, 2_048, 100),
    "many_classes": (20_000, 2_048, 397),
}


def make_features(n, d, n_classes, seed=0, chunk=4096):
    """(features float32[n, d], labels int64[n]); generated in row chunks to keep temporaries small."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n)
    labels[:n_classes] = np.arange(n_classes)  # every class present
    centres = rng.normal(scale=0.6, size=(n_classes, d)).astype(np.float32)
    features = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        noise = rng.standard_normal(size=(stop - start, d), dtype=np.float32)
        np.maximum(centres[labels[start:stop]] + noise, 0.0, out=features[start:stop])
    return features, labels


def rss_bytes(field):
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status, in bytes (0 where there is no /proc)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure_call(call):
    """``(value, seconds, peak bytes)`` of ``call()``: the peak is VmHWM, reset just before the call (Linux >= 4.0),
    minus VmRSS before it, so the data generation's temporaries are not counted."""
    import time

    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    before = rss_bytes("VmRSS")
    start = time.perf_counter()
    value = call()
    seconds = time.perf_counter() - start
    return value, seconds, rss_bytes("VmHWM") - before
