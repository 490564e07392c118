"""Reference NCE (Tran et al., ICCV 2019): -H(Y | Z) from the empirical joint."""

from __future__ import annotations

import math

import numpy as np

from pedrank.scores.nce import encode_label_pair


def nce(source_labels, labels):
    """Reference NCE. See :func:`pedrank.nce`."""
    source, target, n_source, n_target = encode_label_pair(source_labels, labels)
    n_samples = source.shape[0]
    total = 0.0
    for z in range(n_source):
        in_z = source == z
        p_z = in_z.sum() / n_samples
        for y in range(n_target):
            p_zy = np.sum(in_z & (target == y)) / n_samples
            if p_zy > 0:
                total += p_zy * math.log(p_zy / p_z)
    return float(total)
