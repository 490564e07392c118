"""
PED's trajectory: class clusters pushed apart
=============================================

PED (potential-energy decline, Li et al., ICCV 2023) imitates what fine-tuning does to frozen features: every
class is a sphere around its mean, overlapping spheres repel each other like springs, and each step moves whole
classes apart until the potential energy stops falling fast. The moved features are then scored by any score.
This page follows the class means step by step, first on small synthetic features, then on a digits extractor
with :func:`pedrank.frontends.plot.plot_ped`.
"""

# %%
# Five overlapping classes
# ------------------------
# Synthetic frozen features: 5 classes of 80 samples in 8 dimensions, Gaussian clusters whose centres lie in a
# plane (the first two dimensions), close enough to overlap.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pedrank
from pedrank.frontends.plot import plot_ped

rng = np.random.default_rng(0)
n_classes, dims = 5, 8
centres = np.zeros((n_classes, dims))
centres[:, :2] = rng.normal(scale=1.2, size=(n_classes, 2))
labels = np.repeat(np.arange(n_classes), 80)
features = centres[labels] + rng.normal(size=(len(labels), dims))

# %%
# One run of :func:`pedrank.ped` returns the moved features, the number of steps it took, the movement of each
# step and the potential energy before the first step and after each one.
result = pedrank.ped(features, labels)
print(f"PED with its defaults: {result.steps} steps, energy {result.energies[0]:.3f} -> {result.energies[-1]:.3f}")


def class_means(x):
    return np.array([x[labels == c].mean(axis=0) for c in range(n_classes)])


def spread(means):
    """Sum of the distances between every two class means."""
    return np.linalg.norm(means[:, None] - means[None], axis=-1).sum() / 2


growth = spread(class_means(result.features)) / spread(class_means(features)) - 1
print(f"the distances between the class means grow by {growth:.1%}")

# %%
# PED's default step is short (``time_step=0.1``: a step moves each of an overlapping pair by 0.5 % of its
# overlap). The figure below takes ``time_step=0.3``, steps nine times longer, so that the motion stands out.
# PED is deterministic, so the run stopped after ``k`` steps is the first ``k`` steps of a longer run: the class
# means after each step are those of ``ped(..., max_steps=k)``; ``exit_ratio=0`` keeps every run going to
# ``max_steps`` (by default PED stops once a step moves less than half as far as the first one).
options = {"time_step": 0.3, "exit_ratio": 0.0}
steps = 6
trajectory = np.stack([class_means(features)] + [
    class_means(pedrank.ped(features, labels, max_steps=k, **options).features) for k in range(1, steps + 1)
])  # (steps + 1, classes, dims)
long_run = pedrank.ped(features, labels, max_steps=steps, **options)

# %%
# The picture: the class means on the two leading principal components of the class means before PED (hollow:
# before; a dot per step). Each class moves as a whole (its spread is unchanged), away from the classes it
# overlaps; the potential energy falls at every step.
centre = trajectory[0].mean(axis=0)
_, _, vt = np.linalg.svd(trajectory[0] - centre, full_matrices=False)
project = vt[:2].T
path_2d = (trajectory - centre) @ project

fig, (ax, ax_energy) = plt.subplots(1, 2, figsize=(11, 4.6))
colours = plt.cm.tab10(np.arange(n_classes))
ax.scatter(path_2d[0, :, 0], path_2d[0, :, 1], facecolors="none", edgecolors=colours, s=70)
for c in range(n_classes):
    ax.plot(path_2d[:, c, 0], path_2d[:, c, 1], "-o", color=colours[c], markersize=3, lw=1.5, label=f"class {c}")
    ax.annotate("", xy=path_2d[-1, c], xytext=path_2d[-2, c],
                arrowprops={"arrowstyle": "->", "color": colours[c], "lw": 1.5})
ax.set_title(f"class means over {steps} PED steps (time_step 0.3)")
ax.set_xlabel("principal component 1 of the class means")
ax.set_ylabel("principal component 2 of the class means")
ax.set_aspect("equal", adjustable="datalim")
ax.legend(fontsize=8)
ax_energy.plot(range(len(long_run.energies)), long_run.energies, marker="o", label="time_step 0.3")
ax_energy.plot(range(len(result.energies)), result.energies, marker="o", label="defaults (time_step 0.1)")
ax_energy.set_xlabel("PED step (0 = before PED)")
ax_energy.set_ylabel("potential energy")
ax_energy.set_title("potential energy per step")
ax_energy.legend(fontsize=8)
fig.tight_layout()

# %%
# The separation shows in the scores: SFDA and LogME both rise on the moved features.
for metric in ("sfda", "logme"):
    before = pedrank.score(features, labels, metric)
    after = pedrank.score(features, labels, metric, ped=True)
    longer = pedrank.score(features, labels, metric, ped={"time_step": 0.3})
    print(f"{metric}: {before:.4f} before PED, {after:.4f} after (defaults), {longer:.4f} after (time_step 0.3)")

# %%
# A larger radius (``radius``: each class's sphere in units of its spread) makes more classes overlap and move
# further; ``radius=0`` moves nothing.
for radius in (0.0, 0.3, 0.6, 1.0):
    run = pedrank.ped(features, labels, radius=radius)
    growth = spread(class_means(run.features)) / spread(class_means(features)) - 1
    print(f"radius {radius:.1f}: {run.steps} steps, distances between the means +{growth:.1%}")

# %%
# On a real extractor: :func:`pedrank.frontends.plot.plot_ped`
# ------------------------------------------------------------
# The same picture for the demo's PCA-12 features of the digits (12 dimensions, 10 classes):
# :func:`~pedrank.frontends.plot.plot_ped` projects the class means before and after PED on the two leading
# principal components of the means before, and draws the energy per step. It writes a PNG (what
# ``pedrank demo`` saves); here the file is shown on the page.
from pedrank.frontends.demo import digits_model_pool  # noqa: E402

train, y_train, _, _ = digits_model_pool(models=["pca-12", "pixels"])  # a pool has at least two extractors
with tempfile.TemporaryDirectory() as scratch:
    path = Path(scratch) / "ped_pca-12.png"
    run = plot_ped(train["pca-12"], y_train, path, title="PED on digits, extractor pca-12")
    image = plt.imread(path)
height, width = image.shape[:2]
fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
fig.figimage(image)
print(f"pca-12: {run.steps} steps, energy {run.energies[0]:.3f} -> {run.energies[-1]:.3f}")
