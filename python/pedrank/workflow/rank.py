"""Rank a pool of models by a transferability score: the question "which checkpoint do I fine-tune?".

:func:`rank` scores every model of a pool on the same target data and returns a :class:`RankTable`, best
first, with each model's score, the seconds it took and the number of PED steps taken. With ``confidence=B`` it
also says how sure that ranking is (a stratified bootstrap of the target rows, :mod:`pedrank.workflow.confidence`); with
several metrics it returns a :class:`pedrank.workflow.confidence.Agreement` (the scores' rank correlations and their
consensus).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Sequence, Union, overload

from pedrank._engine.progress import progress as _progress
from pedrank._engine.validation import PedrankValueError
from pedrank.scores.scoring import ped_options as parse_ped_options
from pedrank.scores.scoring import refuse_ped_on_predictions, warn_ped_on_held_out
from pedrank.workflow.entry import (
    ERRORS,
    RankRecord,
    accepted_options,
    check_executor,
    check_model_names,
    check_same_target,
    score_entry,
    warn_degenerate_elsewhere,
)
from pedrank.workflow.evaluate import BASELINE_PREFIX, check_baseline
from pedrank.workflow.io.scores import write_csv_records, write_json

if TYPE_CHECKING:
    import numpy as np

    from pedrank.workflow.confidence import Agreement

__all__ = ["RankRecord", "RankTable", "rank"]

PathLike = Union[str, "os.PathLike[str]"]

#: P(best) of the top model below which the top two count as not separated (``RankTable.separation_warning``,
#: the CLI's warning line).
SEPARATED_P_BEST = 0.8

#: The record fields that only a bootstrap run (``rank(..., confidence=B)``) fills.
CONFIDENCE_FIELDS = ("p_best", "rank_low", "rank_high", "score_low", "score_high", "failed_resamples")


def _format_score(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-4):
        return f"{value:.6e}"
    return f"{value:.6f}"


def _interval_centre(record: RankRecord) -> float:
    """The midpoint of the record's bootstrap score interval (NaN without one)."""
    if record.score_low is None or record.score_high is None:
        return math.nan
    return (record.score_low + record.score_high) / 2


class RankTable(list):
    """The ranking of a pool: a list of :class:`RankRecord`, best score first.

    Attributes
    ----------
    metric : str
        The score used.
    ped : bool
        Whether the features were moved by PED before scoring.
    dataset : str or None
        The target dataset's name, when known (for the records written to JSON/CSV).
    baselines : dict of str to dict of str to float
        Trivial rankers shown beside the score (``rank(..., baselines=)``): name to ``{model: value}``, higher =
        predicted better, e.g. ``params`` (parameter count) or ``source_accuracy`` (ImageNet top-1). Written as
        ``baseline_<name>`` columns, which ``pedrank evaluate`` judges beside the score.
    n_resamples : int or None
        ``rank(..., confidence=B)``: B, the number of bootstrap resamples behind the records' ``p_best``,
        ``rank_low``/``rank_high`` and ``score_low``/``score_high``; None without a bootstrap.
    seed : int or None
        The seed the resamples were drawn with (``random_state``, or the integer drawn from a Generator).
    top1_stability : float or None
        P(top-1 stays top-1): the share of resamples whose best model is the measured best (ties split equally),
        i.e. the first record's ``p_best``. None without a bootstrap or when no model was scored.
    bootstrap_scores : dict of str to ndarray of shape (n_resamples,)
        Every scored model's score on each resample (NaN where it failed), in resample order; empty without
        a bootstrap.
    feature_shapes : dict of str to (float, int, int)
        Every scored model's ``(feature_scale, n_samples, n_features)``, of its features as given (before PED);
        empty for a table read back from a file.
    feature_scales : dict of str to float
        (property) Every scored model's feature scale: the RMS of its centred features, in their own units
        (:func:`pedrank._engine.validation.feature_scale`). A score that depends on the scale warns
        (:class:`pedrank.FeatureScaleWarning`) when the pool's models differ in it; dividing each model's
        features by its value puts them on one scale.
    ties : list of list of str
        (property) Groups of models with exactly the same score: the table lists each group in the pool's order,
        which ranks nothing; the text table says so in a ``tied:`` line (and asks whether they are one model's
        features under two names, when their scales and shapes are equal too).
    """

    def __init__(self, records=(), *, metric: str = "", ped: bool = False, dataset: str | None = None,
                 baselines: Mapping[str, Mapping[str, float]] | None = None, n_resamples: int | None = None,
                 seed: int | None = None, top1_stability: float | None = None,
                 bootstrap_scores: Mapping[str, np.ndarray] | None = None,
                 feature_shapes: Mapping[str, tuple[float, int, int]] | None = None):
        super().__init__(records)
        self.metric = metric
        self.ped = ped
        self.dataset = dataset
        self.baselines: dict[str, dict[str, float]] = {k: dict(v) for k, v in (baselines or {}).items()}
        self.n_resamples = n_resamples
        self.seed = seed
        self.top1_stability = top1_stability
        self.bootstrap_scores: dict[str, np.ndarray] = dict(bootstrap_scores or {})
        self.feature_shapes: dict[str, tuple[float, int, int]] = dict(feature_shapes or {})

    @property
    def feature_scales(self) -> dict[str, float]:
        """``{model: feature scale}`` of the scored models (see the class's attributes)."""
        return {model: shape[0] for model, shape in self.feature_shapes.items()}

    @property
    def models(self) -> list[str]:
        """Model names, best first."""
        return [record.model for record in self]

    @property
    def scores(self) -> dict[str, float]:
        """``{model: score}``, best first: what :func:`pedrank.evaluate` takes."""
        return {record.model: record.score for record in self}

    @property
    def errors(self) -> dict[str, str]:
        """``{model: reason}`` of the models without a score (``rank(..., errors="row")``)."""
        return {r.model: r.error for r in self if getattr(r, "error", None)}

    @property
    def ties(self) -> list[list[str]]:
        """Groups of models with exactly the same (finite) score, best first; each group in the table's order,
        which for a tie is the pool's order, not a ranking."""
        groups: dict[float, list[str]] = {}
        for record in self:
            if math.isfinite(record.score):
                groups.setdefault(record.score, []).append(record.model)
        return [models for models in groups.values() if len(models) > 1]

    def _tie_lines(self) -> list[str]:
        lines = []
        for models in self.ties:
            names = [repr(model) for model in models]
            named = ", ".join(names[:-1]) + " and " + names[-1]
            line = (f"tied: {named} have the same score ({_format_score(self.scores[models[0]])}); the table lists "
                    "them in the pool's order, which ranks nothing")
            shapes = {self.feature_shapes.get(m) for m in models}
            if len(shapes) == 1 and None not in shapes:
                line += " (their features have the same scale and shape: the same features under two names?)"
            lines.append(line)
        return lines

    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts, best first: ``rank``, ``model``, ``score``, ``seconds``, ``ped_steps``, ``metric`` and
        (when known) ``dataset``; after a bootstrap also ``p_best``, ``rank_low``, ``rank_high``, ``score_low``,
        ``score_high``, ``failed_resamples``, ``resamples`` and ``top1_stability`` (the table's, on every
        record). NaN scores become None."""
        records = []
        for position, record in enumerate(self, start=1):
            row: dict[str, Any] = {"rank": position}
            row.update(asdict(record))
            if math.isnan(row["score"]):
                row["score"] = None
            if type(record) is RankRecord and record.error is None:
                del row["error"]  # plain rank rows keep their columns; failed ones say why
            if self.n_resamples is None:
                for key in CONFIDENCE_FIELDS:  # a plain ranking's files keep the columns they always had
                    row.pop(key, None)
            else:
                row["resamples"] = self.n_resamples
                row["top1_stability"] = self.top1_stability
            row["metric"] = self.metric + ("+ped" if self.ped else "")
            if self.dataset is not None:
                row["dataset"] = self.dataset
            for name, values in self.baselines.items():
                row[BASELINE_PREFIX + name] = values.get(record.model)
            records.append(row)
        return records

    def to_json(self, path: PathLike | None = None, *, indent: int | None = 2) -> str:
        """The records as a JSON list (best first); also written to ``path`` when given."""
        return write_json(self.to_records(), path, indent=indent)

    def _csv_columns(self) -> list[str]:
        columns = ["rank", "model", "score"]
        if self.n_resamples is not None:
            columns += ["p_best", "rank_low", "rank_high", "score_low", "score_high"]
        columns += ["seconds", "ped_steps", "metric"]
        if self.n_resamples is not None:
            columns += ["resamples", "top1_stability", "failed_resamples"]
        if self.dataset is not None:
            columns.append("dataset")
        columns += [BASELINE_PREFIX + name for name in self.baselines]
        if self.errors:
            columns.append("error")
        return columns

    def to_csv(self, path: PathLike | None = None) -> str:
        """The records as CSV with a header row (best first); also written to ``path`` when given."""
        return write_csv_records(self.to_records(), self._csv_columns(), path)

    def to_string(self) -> str:
        """A fixed-width text table, best first (a ``tied:`` line per group of models with the same score; after a
        bootstrap, a line with the top-1 stability; then one ``error: MODEL: REASON`` line per failed model)."""
        return "\n".join(self._table_lines() + self._tie_lines() + self._confidence_lines()
                         + [f"error: {name}: {reason}" for name, reason in self.errors.items()])

    def _confidence_lines(self) -> list[str]:
        if self.n_resamples is None:
            return []
        stability = "n/a" if self.top1_stability is None else f"{self.top1_stability:.2f}"
        line = (f"top-1 stability: {stability} (share of {self.n_resamples} stratified bootstrap resamples, seed "
                f"{self.seed}, whose best model is {self.models[0] if self.top1_stability is not None else 'n/a'}); "
                "intervals: 5th-95th percentiles")
        failed = {r.model: r.failed_resamples for r in self if r.failed_resamples}
        lines = [line]
        shift = self._duplication_shift()
        if shift is not None:
            lines.append(f"note: {shift}; P(best) describes the resampled rows here, not the target data")
        if failed:
            lines.append("failed on some resamples (ranked last there): "
                         + ", ".join(f"{model} {count}" for model, count in failed.items()))
        return lines

    def _duplication_shift(self) -> str | None:
        """A line when the resamples move the top two models' scores apart by more than their measured gap.

        A resample repeats about a third of the rows. Most scores read repeated rows as tighter classes (k-NN's
        leave-one-out finds a row's copy as its neighbour), so every bootstrap score is shifted, by an amount
        that depends on the model (LogME with N near D: +0.28 for one digits model, +0.15 for another). When the
        difference of the two shifts (each: its interval's midpoint minus its measured score) exceeds the gap
        between the measured scores, P(best) describes the resampled rows rather than the target data.
        """
        scored = [r for r in self if r.score_low is not None and r.score_high is not None]
        if self.n_resamples is None or len(scored) < 2 or scored[0] is not self[0]:
            return None
        top, second = scored[0], scored[1]
        shifts = [_interval_centre(r) - r.score for r in (top, second)]
        gap = top.score - second.score
        if not abs(shifts[0] - shifts[1]) > gap:
            return None
        return (f"{top.model} and {second.model}: the resamples shift their scores by {shifts[0]:+.3g} and "
                f"{shifts[1]:+.3g}, a difference above their measured gap ({gap:.3g})")

    def _confidence_cells(self, record: RankRecord) -> list[str]:
        if self.n_resamples is None:
            return []
        if record.p_best is None:
            return ["-", "-", "-"]
        ranks = ("-" if record.rank_low is None
                 else f"{record.rank_low}" if record.rank_low == record.rank_high
                 else f"{record.rank_low}-{record.rank_high}")
        scores = ("-" if record.score_low is None
                  else f"[{_format_score(record.score_low)}, {_format_score(record.score_high)}]")
        return [f"{record.p_best:.2f}", ranks, scores]

    def separation_warning(self, threshold: float = SEPARATED_P_BEST) -> str | None:
        """One line when the bootstrap cannot tell the top two apart, else None.

        Parameters
        ----------
        threshold : float, default 0.8
            The top model counts as separated when its ``p_best`` is at least this.

        Returns
        -------
        str or None
            ``"TOP (P(best) 0.55) and RUNNER-UP (P(best) 0.41): not separated; fine-tune both"``; the runner-up
            is the other model most often best (the measured second on a tie). Also when P(best) is high but the
            resamples shift the top two scores apart by more than their measured gap (then P(best) measures the
            resampled rows' artefact: see :mod:`pedrank.workflow.confidence`), naming the measured top two. None
            without a bootstrap, with fewer than two scored models, or when separated.
        """
        scored = [r for r in self if r.p_best is not None]
        if self.n_resamples is None or len(scored) < 2 or scored[0].p_best is None:
            return None
        if scored[0].p_best >= threshold:
            shift = self._duplication_shift()
            return None if shift is None else f"{shift}: not separated; fine-tune both"
        top = scored[0]
        runner = max(scored[1:], key=lambda r: r.p_best or 0.0)  # max keeps the first (measured) on a tie
        return (f"{top.model} (P(best) {top.p_best:.2f}) and {runner.model} (P(best) {runner.p_best:.2f}): "
                "not separated; fine-tune both")

    def _table_lines(self) -> list[str]:
        header = ["rank", "model", "score"]
        if self.n_resamples is not None:
            header += ["P(best)", "rank 5-95%", "score 5-95%"]
        header += ["seconds", "ped_steps", *self.baselines]
        rows = [
            [
                str(position),
                record.model,
                _format_score(record.score),
                *self._confidence_cells(record),
                f"{record.seconds:.3f}",
                "-" if record.ped_steps is None else str(record.ped_steps),
                *(_format_score(values[record.model]) if record.model in values else "-"
                  for values in self.baselines.values()),
            ]
            for position, record in enumerate(self, start=1)
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        left_aligned = {1}

        def line(cells):
            return "  ".join(
                cell.ljust(width) if i in left_aligned else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths))
            ).rstrip()

        title = f"metric: {self.metric}" + (" after PED" if self.ped else "")
        if self.dataset is not None:
            title += f", dataset: {self.dataset}"
        return [title, line(header), *(line(row) for row in rows)]

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        extra = "" if self.n_resamples is None else f", n_resamples={self.n_resamples!r}"
        return f"RankTable(metric={self.metric!r}, ped={self.ped!r}, models={self.models!r}{extra})"


def _warn_scale_dependence(table: RankTable, metric_options: Mapping[str, Any]) -> None:
    """:class:`pedrank.FeatureScaleWarning` when the table's ranking may follow its models' feature scales
    (:func:`pedrank.scores.scoring.scale_dependence`), pointing at the caller of :func:`rank`."""
    from pedrank.scores.registry import resolve_metric
    from pedrank.scores.scoring import warn_scale_dependence

    entry, options = resolve_metric(table.metric, metric_options)
    warn_scale_dependence(entry, options, table.feature_shapes, table.metric, stacklevel=4)


def _warn_if_nothing_scored(table: RankTable) -> None:
    """A warning, pointing at the caller of :func:`rank`, when ``errors="row"`` left no model with a score: the
    table's first row is then a failed model, not a best one."""
    import warnings

    if len(table) and all(math.isnan(record.score) for record in table):
        reasons = table.errors
        first = next(iter(reasons.items()), None)
        example = f"; the first: {first[0]}: {first[1]}" if first else ""
        warnings.warn(f"rank: none of the {len(table)} model(s) got a {table.metric} score (every row is NaN"
                      f"{example}); the table ranks nothing", UserWarning, stacklevel=3)


def check_seed(random_state: Any) -> int:
    """The bootstrap's integer seed: ``random_state`` itself, an integer drawn from a Generator, or 0 for None."""
    import numpy as np

    if random_state is None:
        return 0
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise PedrankValueError(f"random_state: found {random_state!r}; expected an integer >= 0, a "
                                "numpy.random.Generator or None")
    return int(random_state)


@overload
def rank(
    pool: Mapping[str, Any],
    labels: Any = None,
    *,
    metric: str | None = None,
    ped: bool | Mapping[str, Any] | PathLike = False,
    backend: str = "auto",
    references: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    progress: bool | None = None,
    executor: Any = None,
    errors: str = "raise",
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    confidence: int | None = None,
    random_state: Any = None,
    **metric_options: Any,
) -> RankTable: ...


@overload
def rank(
    pool: Mapping[str, Any],
    labels: Any = None,
    *,
    metric: Sequence[str],
    ped: bool | Mapping[str, Any] | PathLike = False,
    backend: str = "auto",
    references: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    progress: bool | None = None,
    executor: Any = None,
    errors: str = "raise",
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    confidence: int | None = None,
    random_state: Any = None,
    **metric_options: Any,
) -> Agreement: ...


def rank(
    pool: Mapping[str, Any],
    labels: Any = None,
    *,
    metric: str | Sequence[str] | None = None,
    ped: bool | Mapping[str, Any] | PathLike = False,
    backend: str = "auto",
    references: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    progress: bool | None = None,
    executor: Any = None,
    errors: str = "raise",
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    confidence: int | None = None,
    random_state: Any = None,
    **metric_options: Any,
) -> RankTable | Agreement:
    """Score every model of a pool on the same target data and rank them, best first.

    Parameters
    ----------
    pool : mapping of str to model features
        Model name to one of: an array (n_samples, n_features) scored with ``labels``; a
        ``(features, labels)`` tuple; a dict with ``features``, optional ``labels`` and ``reference``; a path
        to a feature file (see :mod:`pedrank.workflow.io`); a :class:`pedrank.workflow.io.FeatureSource` (as returned by
        :func:`pedrank.workflow.io.find_features`). Files are read one model at a time.
    labels : array-like of shape (n_samples,), optional
        Target labels shared by the models given as bare arrays or as plain ``.npy`` files (which hold none; a
        file that holds or names its own labels keeps them).
    metric : str or sequence of str or None, default None
        None: the recommended score (:data:`pedrank.RECOMMENDED`'s ``metric``, chosen by the zoo's evidence, as
        ``pedrank rank`` without ``--metric``; pass ``ped=pedrank.RECOMMENDED.ped`` for its PED setting, off
        today). One of :data:`pedrank.METRICS` or :data:`pedrank.scores.scoring.METRIC_NAMES`. Several names (a
        list) score every model with each of them in one pass, each model's features read once, and return an
        :class:`pedrank.workflow.confidence.Agreement`: one table per metric, the Kendall tau between their
        rankings and a consensus by mean rank. Each ``metric_options`` entry then goes to the metrics that take it.
    ped : bool or dict, default False
        Move the features with PED before scoring: True for PED's defaults, or a dict of options of
        :func:`pedrank.ped` (``radius``, ``elastic``, ``time_step``, ``exit_ratio``, ``max_steps``,
        ``reference``), or the path of a PED config file written by :func:`pedrank.workflow.tune` (its setting for
        ``metric``: ``false`` there means no PED; see :func:`pedrank.workflow.tune.read_ped_config`).
    backend : {"auto", "numpy", "torch"}, default "auto"
    references : mapping of str to reference, optional
        PED's reference per model (reference features M x D or a ``(mean, std)`` pair); overrides a reference
        file found beside the features and ``ped["reference"]``.
    dataset : str, optional
        The target dataset's name, recorded in the table.
    progress : bool or None, default None
        A progress bar over the models: None shows one on a terminal when the work takes more than a second.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Spread the pool: one task per model, which reads its features, scores them (PED included) and returns
        only its row, so a pool of paths or :class:`pedrank.workflow.io.FeatureSource` never sends features over the
        network (the files must be readable where the tasks run; bare arrays travel with their task). Any
        ``concurrent.futures.Executor`` (``ProcessPoolExecutor``, ``ThreadPoolExecutor``, a Dask client's
        ``client.get_executor()``) or a ``dask.distributed.Client``. The table is the serial one (same
        models, scores, steps and order; only ``seconds`` differ). Pool-relative scores (registry entries with
        a pool step: ``ncti``, ``etran``) compute each model's raw terms in its task and scale them over the pool
        here. With ``confidence`` or several metrics, a task also scores its model's
        resamples and every metric (the tables equal the serial ones, bootstrap included).
    errors : {"raise", "row"}, default "raise"
        "raise": a model whose features or score fail raises (the first failing model in the pool's order,
        with or without an executor; with one, the tasks not yet started are cancelled). "row": that model
        gets a NaN score and its ``error`` (see :attr:`RankTable.errors`), ranked last; the others are
        scored. A ``UserWarning`` says so when no model at all got a score.
    baselines : mapping of str to mapping of str to float, optional
        Trivial rankers to show beside the score, e.g. ``{"params": {model: parameter count}, "source_accuracy":
        {model: ImageNet top-1}}`` (higher = predicted better): a value for every model of the pool, finite.
        They are not used to rank; the table carries them (:attr:`RankTable.baselines`, ``baseline_<name>``
        columns) so that :func:`pedrank.evaluate` / ``pedrank evaluate`` judge them beside the score.
    confidence : int, optional
        B >= 1: say how sure the ranking is. The target rows are resampled B times (stratified bootstrap: each
        class's n_c rows drawn with replacement, the same rows for every model) and every model is rescored on
        each resample, PED included (PED runs on the resampled rows; pool scores are rescored as a pool). The
        records then carry ``p_best``, ``rank_low``/``rank_high`` and ``score_low``/``score_high``, the table
        ``top1_stability`` and ``bootstrap_scores``. It costs about B + 1 plain runs (BENCHMARKS.md,
        "How sure is the ranking?"). Every model must have the same labels. A model that failed on the full data
        (``errors="row"``) keeps its NaN row without intervals.
    random_state : int, numpy.random.Generator or None, default None
        Seeds the bootstrap (None: seed 0, so the same call gives the same table). An integer is also passed to a
        metric that takes a ``random_state`` of its own (pactran, etran, nleep, parc), as it was before this
        argument existed, so one seed fixes every random step of the call; a Generator seeds the bootstrap only.
    **metric_options
        Passed to the metric (e.g. ``shrinkage=`` for SFDA).

    Returns
    -------
    RankTable or Agreement
        For one metric: one :class:`RankRecord` per model, sorted by score, best first (NaN scores last; ties
        keep the pool's order). For several: a :class:`pedrank.workflow.confidence.Agreement`.

    Raises
    ------
    PedrankValueError
        Empty pool, unknown metric, bad PED options, a bad ``executor`` or ``errors``, or (``errors="raise"``)
        bad features/labels; the message names the model and, for files, the file. Also, whatever ``errors``:
        a ``references`` key that is not a model of the pool, two models named alike as text (``1`` and
        ``"1"``), and models scored on different target data (labels of another number of rows or other class
        sizes, e.g. a label file of another split), whose scores cannot be ranked against each other.
    """
    if metric is None:
        from pedrank.workflow.recommendation import RECOMMENDED

        metric = RECOMMENDED.metric
    if not isinstance(pool, Mapping):
        raise PedrankValueError(
            f"pool must be a mapping of model names to features, found {type(pool).__name__}; "
            "for files on disk use pedrank.workflow.io.find_features(paths)"
        )
    if len(pool) == 0:
        raise PedrankValueError("pool is empty; expected at least one model")
    check_model_names(pool)
    unknown = [name for name in (references or {}) if name not in pool]
    if unknown:
        raise PedrankValueError(f"references: no model {unknown[0]!r} in the pool ({', '.join(map(str, pool))}); "
                                "expected a reference for a model of the pool (a misspelt name would leave that "
                                "model's PED on its own statistics)")
    if errors not in ERRORS:
        raise PedrankValueError(f"errors: found {errors!r}; expected 'raise' or 'row'")
    dask = False if executor is None else check_executor(executor)
    checked_baselines = check_baselines(baselines, list(pool))
    from pedrank.scores.registry import refuse_unknown_options, resolve_metric

    if ped is True or isinstance(ped, Mapping):
        for name in ([metric] if isinstance(metric, str) else list(metric)):
            refuse_ped_on_predictions(resolve_metric(name)[0])
            warn_ped_on_held_out(resolve_metric(name)[0])
    seed = check_seed(random_state)
    # an integer seed also reaches a metric that takes one (as before rank had a random_state); a Generator cannot
    metric_seed = seed if random_state is not None and not hasattr(random_state, "integers") else None
    if confidence is not None:
        from pedrank._engine.validation import check_int

        confidence = check_int(confidence, name="confidence", minimum=1)
    if not isinstance(metric, str) or confidence is not None:
        from pedrank.workflow.confidence import bootstrap_rank

        result = bootstrap_rank(pool, labels, metric=metric, ped=ped, backend=backend, references=references,
                                dataset=dataset, progress=progress, executor=executor, errors=errors,
                                baselines=checked_baselines, n_resamples=confidence or 0, seed=seed,
                                metric_seed=metric_seed,
                                metric_options=metric_options)
        for table in (result.tables.values() if hasattr(result, "tables") else [result]):
            _warn_scale_dependence(table, metric_options)
            _warn_if_nothing_scored(table)
        return result
    entry, _ = resolve_metric(metric, metric_options)
    if metric_seed is not None and "random_state" in accepted_options(entry):
        metric_options = {**metric_options, "random_state": metric_seed}
    entry, form_options = resolve_metric(metric, metric_options)
    refuse_unknown_options(metric, metric_options, accepted_options(entry))
    if isinstance(ped, (str, os.PathLike)):
        from pedrank.workflow.tune import read_ped_config

        ped = read_ped_config(ped, metric)
        if ped is not False and ped is not None:
            warn_ped_on_held_out(entry)
    if entry.pool is not None:
        # The authors' number depends on the whole pool (each term scaled over the models): their pool step.
        table = entry.pool(pool, labels, ped=ped, backend=backend, references=references, dataset=dataset,
                           errors=errors, progress=progress, metric_name=metric, executor=executor, **form_options)
        table.baselines = checked_baselines
        _warn_scale_dependence(table, metric_options)
        _warn_if_nothing_scored(table)
        return table
    ped_options = parse_ped_options(ped)
    references = dict(references or {})

    records: list[RankRecord] = []
    description = metric + ("+PED" if ped_options is not None else "")

    def arguments(name: Any, entry: Any) -> tuple[Any, ...]:
        override = (name in references, references.get(name))
        return (name, entry, labels, metric, ped_options, override, backend, metric_options, errors)

    targets: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    if executor is None:
        for name, entry in _progress(pool.items(), total=len(pool), desc=description, enabled=progress):
            record, targets[str(name)], shapes[str(name)] = score_entry(*arguments(name, entry))
            records.append(record)
            check_same_target(targets)  # refused at the first model of other data, not after scoring the rest
    else:
        extra = {"pure": False} if dask else {}
        futures = [executor.submit(score_entry, *arguments(name, entry), **extra) for name, entry in pool.items()]
        try:
            for future in _progress(futures, total=len(futures), desc=description, enabled=progress):
                record, target, shape = future.result()
                records.append(record)
                targets[record.model], shapes[record.model] = target, shape
                check_same_target(targets)
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def best_first(i: int) -> tuple[bool, float, int]:
        value = records[i].score
        return (math.isnan(value), 0.0 if math.isnan(value) else -value, i)

    order = sorted(range(len(records)), key=best_first)
    table = RankTable([records[i] for i in order], metric=metric, ped=ped_options is not None, dataset=dataset,
                      baselines=checked_baselines, feature_shapes={k: v for k, v in shapes.items() if v is not None})
    warn_degenerate_elsewhere(entry, table.scores, shapes, targets, executor, stacklevel=2)
    _warn_scale_dependence(table, metric_options)
    _warn_if_nothing_scored(table)
    return table


def check_baselines(baselines: Mapping[str, Mapping[str, float]] | None,
                    models: list[str]) -> dict[str, dict[str, float]]:
    """``baselines`` as ``{name: {model: float}}``, each with a finite value for every model of ``models``; names
    fit a ``baseline_<name>`` column."""
    if baselines is None:
        return {}
    if not isinstance(baselines, Mapping):
        raise PedrankValueError(f"baselines: found {type(baselines).__name__}; expected a mapping of names to "
                                "{model: value} mappings")
    checked = {}
    for name, values in baselines.items():
        if not isinstance(name, str) or "," in name or name.startswith(BASELINE_PREFIX):
            raise PedrankValueError(f"baselines: name {name!r}: expected a string without commas and without the "
                                    f"{BASELINE_PREFIX!r} prefix (e.g. 'params', 'source_accuracy')")
        checked[name] = check_baseline(name, values, models)
    return checked
