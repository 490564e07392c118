"""The recommended score: what ``pedrank rank`` and ``pedrank select`` use without ``--metric``, and the rule that
derives it from the zoo's evidence.

The evidence is ``benchmarks/zoo/evidence.csv`` (written by ``benchmarks/zoo/evidence.py``): every feature score,
in each named form, without and with PED, judged by weighted tau against two ground truths (fine-tuned accuracy
and a linear probe) on the offline zoo, measured and on resamples of the scoring rows.

The rule (:func:`recommend`), stated so that anyone can rerun it on the committed table:

1. Candidates are the variants ``pedrank.rank`` computes: every score row of the evidence except the single-model
   raw sums of pool scores (``ncti``, ``etran``: ``rank`` scales them over the pool, the ``(pool)`` rows).
2. The product's question is "which model is best after fine-tuning?", so the first criterion is the mean weighted
   tau against fine-tuned accuracy (the full scoring rows, measured, mean over the fine-tuned datasets). A tau
   that is undefined (a score that ties every model) counts as 0, no information. A variant that *failed*
   on a unit (it refused a model or gave it a non-finite value: the ``failed`` column counts those models) is not
   a candidate: a default must score every model of a real pool. Its means are over the units it scored. Nor is
   PED combined with a score that measures held-out accuracy on the rows PED moves (k-NN, ITM: PED's per-class
   displacement leaks those rows' labels, :class:`pedrank.PedLeakageWarning`).
3. The fine-tuned zoo is small, so every candidate whose mean is within the combined resample noise of the best's
   is kept (best - candidate <= sqrt(std_best^2 + std_candidate^2), each std that of the dataset mean over the
   resamples of the scoring rows), and among them the one with the highest mean weighted tau against the linear
   probe (all probe datasets) is chosen; remaining ties go by name.

:data:`RECOMMENDED` is that rule's answer on the committed table; ``tests/test_recommendation.py`` reruns the rule on
the committed CSV and fails when they disagree.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from pedrank._engine.validation import PedrankValueError

__all__ = ["CHALLENGE_PROBABILITY", "RECOMMENDED", "Recommendation", "candidates", "challenge", "explain", "failures",
           "parse_variant", "read_evidence", "recommend", "summary"]

#: Scores whose ``rank`` form is the pool form: their raw single-model rows are not candidates.
POOL_SCORES = ("etran", "ncti")


@dataclass(frozen=True)
class Recommendation:
    """A score, its form and whether PED moves the features first.

    Attributes
    ----------
    variant : str
        The evidence table's row name, e.g. ``"sfda+PED"``, ``"logme:exact"``, ``"ncti (pool)"``.
    metric : str
        The name ``pedrank.rank`` / ``--metric`` takes, e.g. ``"sfda"``, ``"logme:exact"``, ``"ncti"``.
    ped : bool
        True: PED with its default setting before scoring.
    """

    variant: str
    metric: str
    ped: bool

    def describe(self) -> str:
        return f"{self.metric}{' with PED' if self.ped else ''}"


def parse_variant(variant: str) -> Recommendation:
    """The metric name and PED flag of an evidence row name (``"ncti (pool)+PED"`` -> ncti, PED on)."""
    ped = variant.endswith("+PED")
    name = variant[: -len("+PED")] if ped else variant
    metric = name[: -len(" (pool)")] if name.endswith(" (pool)") else name
    return Recommendation(variant=variant, metric=metric, ped=ped)


def read_evidence(path: str | Path) -> list[dict[str, Any]]:
    """The rows of ``evidence.csv``, with the ranking metrics as floats (nan where a tau is undefined)."""
    rows = []
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            for key in ("weighted_tau", "kendall_tau", "top1"):
                row[key] = float(row[key]) if row[key] not in ("", "nan") else math.nan
            row["failed"] = int(row.get("failed") or 0)
            rows.append(row)
    return rows


def _tau(row: Mapping[str, Any], key: str = "weighted_tau") -> float:
    value = row[key]
    return 0.0 if math.isnan(value) else value


def summary(evidence: Iterable[Mapping[str, Any]], truth: str, *, budget: str | None = "full",
            regime: str | None = None, modality: str | None = None,
            key: str = "weighted_tau") -> dict[str, tuple[float, float, int]]:
    """{variant: (measured mean, std over resamples of the mean, number of units)} for one truth.

    A unit is a (dataset, budget) pair; ``budget``, ``regime`` (``"N<=D"`` / ``"N>D"``) and ``modality``
    (``"vision"`` / ``"text"``) select units (None: all). The std is nan for rows without resamples (baselines).
    """
    measured: dict[str, list[float]] = {}
    resampled: dict[str, dict[str, list[float]]] = {}
    for row in evidence:
        if row["truth"] != truth or (budget and row["budget"] != budget) or (regime and row["regime"] != regime) \
                or (modality and row["modality"] != modality):
            continue
        if row.get("failed"):
            continue  # a failure is not a tie: counted by failures(), never averaged in as 0
        if row["resample"] == "measured":
            measured.setdefault(row["variant"], []).append(_tau(row, key))
        else:
            resampled.setdefault(row["variant"], {}).setdefault(row["resample"], []).append(_tau(row, key))
    out = {}
    for variant, values in measured.items():
        means = [sum(v) / len(v) for v in resampled.get(variant, {}).values() if len(v) == len(values)]
        if len(means) > 1:
            centre = sum(means) / len(means)
            std = math.sqrt(sum((m - centre) ** 2 for m in means) / (len(means) - 1))
        else:
            std = math.nan
        out[variant] = (sum(values) / len(values), std, len(values))
    return out


def failures(evidence: Iterable[Mapping[str, Any]], truth: str | None = None) -> dict[str, int]:
    """{variant: number of units (measured and resampled) on which it failed at least one model}, failing ones
    only; ``truth`` selects one ground truth (None: both)."""
    out: dict[str, int] = {}
    for row in evidence:
        if row.get("failed") and (truth is None or row["truth"] == truth):
            out[row["variant"]] = out.get(row["variant"], 0) + 1
    return out


def _leaks(variant: str) -> bool:
    """PED on a held-out-accuracy score (the registry's ``held_out``): the labels leak, not a candidate."""
    from pedrank.scores.registry import resolve_metric

    parsed = parse_variant(variant)
    if not parsed.ped:
        return False
    try:
        entry, _ = resolve_metric(parsed.metric)
    except ValueError:  # a row name that is no metric (a consensus, a baseline)
        return False
    return bool(entry.held_out)


def candidates(evidence: Iterable[Mapping[str, Any]]) -> list[str]:
    """The score rows ``pedrank.rank`` can compute (the raw sums of pool scores left out) that never failed on a
    model of the zoo, and not PED on a held-out-accuracy score (:func:`_leaks`), sorted; a consensus row (the mean rank over several scores) only when its mean against
    fine-tuned accuracy beats every single score's."""
    evidence = list(evidence)
    failed = failures(evidence)
    names = {row["variant"] for row in evidence if row["kind"] == "score"}
    kept = [n for n in names if parse_variant(n).metric not in POOL_SCORES and n not in failed and not _leaks(n)]
    consensus = {row["variant"] for row in evidence if row["kind"] == "consensus"} - set(failed)
    if consensus:
        finetuned = summary(evidence, "finetuned")
        best_single = max((finetuned[n][0] for n in names if n in finetuned), default=-math.inf)
        kept += [n for n in consensus if n in finetuned and finetuned[n][0] > best_single]
    return sorted(kept)


def recommend(evidence: Iterable[Mapping[str, Any]]) -> Recommendation:
    """The module docstring's rule applied to ``evidence`` (rows of :func:`read_evidence`)."""
    evidence = list(evidence)
    pool = candidates(evidence)
    finetuned = summary(evidence, "finetuned")
    probe = summary(evidence, "probe")
    scored = [v for v in pool if v in finetuned and v in probe]
    if not scored:
        raise PedrankValueError("evidence: no candidate has rows against both fine-tuned accuracy and the probe")
    chosen = max(sorted(_shortlist(scored, finetuned)), key=lambda v: probe[v][0])
    return parse_variant(chosen)


def _noise(std: float) -> float:
    return 0.0 if math.isnan(std) else std


def _shortlist(pool: list[str], finetuned: Mapping[str, tuple[float, float, int]]) -> list[str]:
    """The candidates within the combined resample noise of the best against fine-tuned accuracy, best first."""
    best = max(pool, key=lambda v: (finetuned[v][0], v))
    top, spread = finetuned[best][0], _noise(finetuned[best][1])
    kept = [v for v in pool if top - finetuned[v][0] <= math.hypot(spread, _noise(finetuned[v][1]))]
    return sorted(kept, key=lambda v: -finetuned[v][0])


def explain(choice: Recommendation, evidence: Iterable[Mapping[str, Any]]) -> str:
    """A few lines saying what was chosen and on which figures."""
    evidence = list(evidence)
    finetuned = summary(evidence, "finetuned")
    probe = summary(evidence, "probe")
    pool = [v for v in candidates(evidence) if v in finetuned and v in probe]
    shortlist = _shortlist(pool, finetuned)
    best = shortlist[0]
    lines = [f"Recommendation: {choice.describe()} (row {choice.variant!r}).",
             f"Best against fine-tuned accuracy: {best} {finetuned[best][0]:+.3f} +- {finetuned[best][1]:.3f} "
             f"(std over resamples). Within the combined resample noise of it, by mean weighted tau against "
             f"the probe:"]
    lines += [f"  {v}: fine-tuned {finetuned[v][0]:+.3f} +- {finetuned[v][1]:.3f}, probe {probe[v][0]:+.3f}"
              for v in sorted(shortlist, key=lambda v: -probe[v][0])]
    return "\n".join(lines)


#: The rule's answer on the committed benchmarks/zoo/evidence.csv (tests/test_recommendation.py checks it).
RECOMMENDED = Recommendation(variant="pactran", metric="pactran", ped=False)


#: A challenger replaces the default only when it beats it in this share of the paired bootstrap draws.
CHALLENGE_PROBABILITY = 0.9


def challenge(result: Any, incumbent: str, candidates: Iterable[str], *,
              threshold: float = CHALLENGE_PROBABILITY,
              cost: Mapping[str, float] | None = None) -> tuple[str, list[str]]:
    """The rule that does not flip on noise: keep ``incumbent`` unless a challenger beats it in the paired
    hierarchical bootstrap (:func:`pedrank.workflow.bootstrap.hierarchical_bootstrap` on the fine-tuned truth) with
    probability >= ``threshold``.

    Parameters
    ----------
    result : pedrank.workflow.bootstrap.BootstrapResult
        The bootstrap against fine-tuned accuracy.
    incumbent : str
        The current default's variant (``RECOMMENDED.variant``).
    candidates : iterable of str
        The variants that may replace it (:func:`candidates`).
    threshold : float, default 0.9
    cost : mapping of str to float, optional
        Seconds per call (any consistent unit): among challengers that all pass, the cheaper wins a tie of P.

    Returns
    -------
    chosen : str
        The challenger with the highest P(beats the incumbent) among those >= ``threshold`` (then the cheaper,
        then by name), else the incumbent.
    tied : list of str
        The candidates that ``chosen`` does not beat with P >= ``threshold`` (``chosen`` first, then by measured
        mean): the variants the evidence cannot tell apart from it.
    """
    pool = [v for v in candidates if v in result.variants]
    if incumbent not in result.variants:
        raise PedrankValueError(f"incumbent: {incumbent!r} has no bootstrap draws; expected one of {result.variants}")
    cost = dict(cost or {})
    winners = [v for v in pool if v != incumbent and result.p_beats(v, incumbent) >= threshold]
    chosen = incumbent
    if winners:
        chosen = min(winners, key=lambda v: (-result.p_beats(v, incumbent), cost.get(v, math.inf), v))
    tied = [v for v in pool if v != chosen and result.p_beats(chosen, v) < threshold]
    tied.sort(key=lambda v: (-(result.measured.get(v) if math.isfinite(result.measured.get(v, math.nan))
                               else -math.inf), v))
    return chosen, [chosen, *tied]
