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
