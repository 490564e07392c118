"""
How sure is a ranking? ``rank(..., confidence=B)``
==================================================

A score is computed from a few hundred labelled target rows; another draw of them would give other numbers and,
when the top two are close, perhaps another winner. ``pedrank.rank(..., confidence=B)`` resamples the target rows
B times (a stratified bootstrap: the same rows for every model, seeded by ``random_state``), rescores every model
on each resample and reports how often each model comes out best (``P(best)``), the spread of its rank and of its
score. ``pedrank plot ranking`` draws the result; here the same figure comes from Python.
"""

# %%
# A pool of five extractors on the digits
# ---------------------------------------
# Five of the demo's feature extractors (see the first example), on the 898 digits of its scoring half: two of
# them, the hidden layers of small networks trained on other digit tasks, are close.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pedrank
from pedrank.frontends.demo import digits_model_pool
from pedrank.frontends.plot import plot_ranking

models = ["mlp-even-odd", "mlp-digits-0-4", "random-relu-24", "gradient-hist", "pca-12"]
pool, labels, _, _ = digits_model_pool(models=models)

# %%
# Three scores, 100 resamples
# ---------------------------
# A list of metrics scores every model with each of them (each model's features read once) and returns an
# :class:`~pedrank.workflow.confidence.Agreement`: a table per metric, the Kendall tau between their rankings and
# a consensus by mean rank. With ``confidence=100`` each table carries the bootstrap's columns.
agreement = pedrank.rank(pool, labels, metric=["sfda", "gbc", "logme"], confidence=100, random_state=0,
                         dataset="digits")
print(agreement)

# %%
# Reading one table
# -----------------
# Each record holds ``p_best`` (the share of resamples in which the model scores highest), ``rank_low`` /
# ``rank_high`` (the 5th and 95th percentiles of its rank) and ``score_low`` / ``score_high`` (those of its
# bootstrap scores); the table holds ``top1_stability`` (the share of resamples whose best is the measured best)
# and every bootstrap score. When the top model is best in fewer than 80 % of the resamples,
# :meth:`~pedrank.RankTable.separation_warning` returns the line ``pedrank rank`` prints: fine-tune both.
for metric, table in agreement.tables.items():
    best = table[0]
    print(f"{metric}: best {best.model}, P(best) {best.p_best:.2f}, ranks {best.rank_low}-{best.rank_high}, "
          f"score {best.score:.4f} in [{best.score_low:.4f}, {best.score_high:.4f}]; "
          f"top-1 stability {table.top1_stability:.2f}")
    print("   ", table.separation_warning() or "separated")

# %%
# The figure of ``pedrank plot ranking``
# --------------------------------------
# :func:`pedrank.frontends.plot.plot_ranking` draws one panel per metric (best at the top, the measured score as
# a dot, the 5th-95th percentile of the bootstrap scores as a bar, P(best) beside the models that were ever best)
# and, for several metrics, the Kendall tau between their rankings. It writes a PNG, as the command does; the
# file is shown here.
with tempfile.TemporaryDirectory() as scratch:
    path = Path(scratch) / "ranking.png"
    drawn = plot_ranking(agreement, path)
    image = plt.imread(path)
height, width = image.shape[:2]
fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
fig.figimage(image)
print("consensus order:", drawn["models"])

# %%
# The bootstrap scores themselves
# -------------------------------
# ``table.bootstrap_scores`` holds every model's B scores. For GBC the two networks' distributions overlap: the
# measured winner is not the winner on every resample. (A resample repeats about a third of its rows, which
# tightens the classes and can shift a score: SFDA's and LogME's intervals above lie above their measured scores.
# :doc:`/confidence` says what the intervals are and are not.)
gbc = agreement.tables["gbc"]
top_two = gbc.models[:2]
fig, ax = plt.subplots(figsize=(6.4, 3.6))
bins = np.histogram_bin_edges(np.concatenate([gbc.bootstrap_scores[m] for m in top_two]), bins=25)
for record, colour in zip(gbc[:2], ("tab:blue", "tab:orange")):
    ax.hist(gbc.bootstrap_scores[record.model], bins=bins, alpha=0.55, color=colour,
            label=f"{record.model} (P(best) {record.p_best:.2f})")
    ax.axvline(record.score, color=colour, lw=1.5, ls="--")
ax.set_xlabel("GBC score on a resample (dashed: measured on all rows)")
ax.set_ylabel("resamples")
ax.set_title(f"GBC, {gbc.n_resamples} stratified bootstrap resamples")
ax.legend(fontsize=8)
fig.tight_layout()
