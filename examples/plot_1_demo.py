"""
Choosing a model on the digits: ``pedrank demo`` in Python
==========================================================

``pedrank demo`` runs a small but real model-selection problem: which of a pool of "pre-trained" feature
extractors should be fine-tuned for scikit-learn's handwritten digits? This page does its main job step by step
in Python: build the pool, measure the ground truth the expensive way (a probe trained on each model's
features), rank the pool with a transferability score, with and without PED, and compare the rankings with the
truth. (In one call: ``pedrank demo`` on the command line, or ``pedrank.frontends.demo.run_demo()``, which also
writes the plots.)
"""

# %%
# The pool and the data
# ---------------------
# :func:`pedrank.frontends.demo.digits_model_pool` splits the 1,797 digits (8x8 images, 10 classes) into a half
# to score and train on and a half to test on, and runs each extractor on both halves: raw pixels, PCAs, ink
# profiles, a gradient histogram, random ReLU features and the hidden layer of two small networks trained on
# *other* tasks (even vs odd, and the digits 0-4 only). ``pedrank demo`` also has two 512-wide extractors; they
# are left out here to keep this page fast.
import matplotlib.pyplot as plt
import numpy as np

import pedrank
from pedrank.frontends.demo import MODELS, digits_model_pool, probe_accuracy

models = [name for name in MODELS if not name.endswith("-512")]
train, y_train, test, y_test = digits_model_pool(models=models)
print(f"{len(y_train)} images to score, {len(y_test)} to test, {len(np.unique(y_train))} classes")
for name, features in train.items():
    print(f"{name:>15}: {features.shape[1]:3d} features")

# %%
# Ground truth: a probe per model
# -------------------------------
# What a user would measure the expensive way: a logistic-regression probe trained on each model's features of
# the first half, its accuracy on the second half. The scores below never see the second half.
accuracies = {name: probe_accuracy(train[name], y_train, test[name], y_test) for name in train}
for name in sorted(accuracies, key=accuracies.get, reverse=True):
    print(f"{name:>15}: {accuracies[name]:.2f} %")

# %%
# Rank the pool
# -------------
# :func:`pedrank.rank` scores every model on the first half's features and labels only. Without ``metric`` it
# runs the recommended score, :data:`pedrank.RECOMMENDED` (chosen on the zoo's fine-tuned evidence, see
# :doc:`/choosing`); ``ped=True`` first moves the features with PED's defaults.
print("recommended score:", pedrank.RECOMMENDED.describe())
plain = pedrank.rank(train, y_train, dataset="digits")
moved = pedrank.rank(train, y_train, ped=True, dataset="digits")
print(plain)
print()
print(moved)

# %%
# How good are the rankings?
# --------------------------
# :func:`pedrank.evaluate` compares a ranking with the measured accuracies: the weighted Kendall tau (1: the
# same order, top models weighted most), and the relative accuracy of the model ranked first.
for label, table in (("without PED", plain), ("with PED", moved)):
    evaluation = pedrank.evaluate(table, accuracies)
    print(f"{label}: weighted tau {evaluation.weighted_tau:+.3f}, "
          f"top-1 relative accuracy {evaluation.top_k_relative_accuracy[1]:.3f}")

# %%
# The demo also compares other scores (each model's features read once for all the metrics of a list); on this
# small probe task they can beat the recommended default, which rests on fine-tuned evidence instead.
print(f"{'metric':>8}  without PED  with PED")
for metric in ("logme", "sfda", "gbc"):
    taus = [pedrank.evaluate(pedrank.rank(train, y_train, metric=metric, ped=ped), accuracies).weighted_tau
            for ped in (False, True)]
    print(f"{metric:>8}  {taus[0]:+11.3f}  {taus[1]:+8.3f}")

# %%
# Each model's score against its probe accuracy: a good score puts the points on a rising line.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
for ax, (label, table) in zip(axes, (("without PED", plain), ("with PED", moved))):
    scores = table.scores
    names = list(scores)
    ax.scatter([scores[m] for m in names], [accuracies[m] for m in names])
    for name in names:
        ax.annotate(name, (scores[name], accuracies[name]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    tau = pedrank.evaluate(table, accuracies).weighted_tau
    ax.set_title(f"{table.metric} {label}: weighted tau {tau:+.3f}")
    ax.set_xlabel(f"{table.metric} score")
    ax.set_ylabel("probe accuracy on digits (%)")
fig.tight_layout()
