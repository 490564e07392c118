"""Degenerate but legal inputs: what each score does in each case, as a table of expected outcomes.

EXPECTED below is the "Degenerate inputs" table of docs/robustness.md (moved there from the README) cell by cell:
a finite value in a stated range, a specific value (0, -C(C-1), 0.5, ...), PED's steps, or the specific refusal (a
PedrankValueError whose message says why). Both implementations (the compiled core via ``pedrank`` and
``pedrank.reference``) must give each cell's outcome; test_readme_table_agrees_with_expected checks that
docs/robustness.md says the same thing.
Never NaN, never an exception from deep inside numpy/scipy.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import pedrank
import pedrank.reference as reference
from pedrank import PedrankValueError

IMPLEMENTATIONS = {"public": pedrank, "reference": reference}


def _clusters(n_samples, n_features, n_classes, *, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    features = rng.normal(size=(n_samples, n_features)) + labels[:, None]
    return features, labels


def _one_sample_class():
    features, labels = _clusters(40, 6, 4)
    labels = labels.copy()
    labels[0] = 9
    return features, labels


def _every_class_one_sample():
    features, _ = _clusters(20, 6, 2)
    return features, np.arange(20)


def _classes_close_to_samples():
    features, _ = _clusters(20, 6, 2)
    labels = np.arange(20)
    labels[-1] = 0
    return features, labels


def _more_features_than_samples():
    return _clusters(20, 50, 3)


def _far_more_features_than_samples():
    return _clusters(6, 300, 2)


def _constant_column():
    features, labels = _clusters(40, 6, 4)
    features[:, 2] = 3.0
    return features, labels


def _all_samples_identical():
    features, labels = _clusters(40, 6, 4)
    features[:] = features[0]
    return features, labels


def _all_zero():
    features, labels = _clusters(40, 6, 4)
    return np.zeros_like(features), labels


def _duplicated_samples():
    features, labels = _clusters(40, 6, 4)
    return np.vstack([features, features]), np.concatenate([labels, labels])


def _identical_samples_within_each_class():
    features, labels = _clusters(5, 6, 5)
    return np.repeat(features, 3, axis=0), np.repeat(labels, 3)


def _two_samples():
    features, labels = _clusters(2, 3, 2)
    return features, labels


def _coincident_class_means():
    # Two classes holding the same rows in the same order: bitwise equal means.
    features, _ = _clusters(10, 3, 1)
    return np.vstack([features, features]), np.repeat([0, 1], 10)


def _imbalanced():
    features, labels = _clusters(200, 5, 2)
    labels = (np.arange(200) < 3).astype(int)
    return features, labels


def _scaled(factor):
    def make():
        features, labels = _clusters(40, 6, 4)
        return features * factor, labels

    return make


CASES = {
    "one-sample-class": _one_sample_class,
    "every-class-one-sample": _every_class_one_sample,
    "classes-close-to-samples": _classes_close_to_samples,
    "D>N": _more_features_than_samples,
    "D>>N": _far_more_features_than_samples,
    "constant-column": _constant_column,
    "all-samples-identical": _all_samples_identical,
    "all-zero": _all_zero,
    "duplicated-samples": _duplicated_samples,
    "identical-within-class": _identical_samples_within_each_class,
    "two-samples": _two_samples,
    "coincident-class-means": _coincident_class_means,
    "imbalanced-3-of-200": _imbalanced,
    "scale-1e-6": _scaled(1e-6),
    "scale-1e6": _scaled(1e6),
    "scale-1e-12": _scaled(1e-12),
    "scale-1e12": _scaled(1e12),
    "scale-1e-150": _scaled(1e-150),
    "scale-1e150": _scaled(1e150),
    "scale-1e-200": _scaled(1e-200),
}


# ----------------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Finite:
    """A finite value in [low, high] (None: the score's own range: SFDA (0, 1], GBC [-C(C-1), 0])."""

    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Equals:
    """This value (``gbc_bound``: -C(C-1), GBC's floor when every class overlaps every other)."""

    value: float
    atol: float = 1e-12


@dataclass(frozen=True)
class Refused:
    """A PedrankValueError whose message matches this regular expression."""

    match: str


@dataclass(frozen=True)
class Moves:
    """PED takes at least one step; the moved features are finite."""


@dataclass(frozen=True)
class Still:
    """PED takes 0 steps and returns the features unchanged, counting coincident class-mean pairs."""

    coincident_pairs: int = 0


FINITE = Finite()
ZERO_SCATTER = Refused(r"within-class scatter is zero")
SINGULAR = Refused(r"every singular value of the features is at most 1e-10")
DEAD = Refused(r"carry no information: all \d+ rows are identical")
TOO_LARGE = Refused(r"features: found \|value\| up to .*values beyond 1e\+150")
TOO_SMALL = Refused(r"features: found \|value\| only up to .*below 1e-150 underflow")

# LogME is checked with the default and with exact_dimension=True, SFDA with the adaptive shrinkage and 0.5, GBC
# with spherical and diagonal covariances: one outcome holds for both variants. Core and reference agree on every
# cell (to rounding).
EXPECTED = {
    "one-sample-class": dict(logme=Finite(-1, 0), sfda=FINITE, gbc=FINITE, ped=Moves()),
    "every-class-one-sample": dict(logme=Finite(0, 1), sfda=ZERO_SCATTER, gbc=Equals(0), ped=Still()),
    "two-samples": dict(logme=Finite(-1, 1), sfda=ZERO_SCATTER, gbc=Equals(0), ped=Still()),
    # C = N - 1: 1.0 on separable data (0.998 with shrinkage 0.5)
    "classes-close-to-samples": dict(logme=Finite(0, 1), sfda=Finite(0.99, 1), gbc=FINITE, ped=Moves()),
    # D > N: the default (N x N Gram path) is inflated by the authors' D/2 log alpha (3.5 and 172 here); the exact
    # dimension gives -0.69 and -0.86. Shrinkage makes SFDA's scatter invertible: 1.0 to 1e-8.
    "D>N": dict(logme=Finite(-1, 5), sfda=Finite(1 - 1e-8, 1), gbc=FINITE, ped=Still()),
    "D>>N": dict(logme=Finite(-1, 200), sfda=Finite(1 - 1e-8, 1), gbc=FINITE, ped=Still()),
    "constant-column": dict(logme=Finite(-1, 0), sfda=FINITE, gbc=FINITE, ped=Moves()),
    # A dead model: refused by the shared validation before any score (or PED) runs.
    "all-samples-identical": dict(logme=DEAD, sfda=DEAD, gbc=DEAD, ped=DEAD),
    "all-zero": dict(logme=DEAD, sfda=DEAD, gbc=DEAD, ped=DEAD),
    "duplicated-samples": dict(logme=Finite(-1, 0), sfda=FINITE, gbc=FINITE, ped=Moves()),
    "identical-within-class": dict(logme=Finite(0, 5), sfda=ZERO_SCATTER, gbc=Equals(0), ped=Still()),
    "coincident-class-means": dict(logme=Finite(-2, 0), sfda=Equals(0.5), gbc=Equals(-2), ped=Still(1)),
    "imbalanced-3-of-200": dict(logme=Finite(-1, 0), sfda=FINITE, gbc=FINITE, ped=Moves()),
    # GBC's variance floor (1e-4) is absolute: features x 1e-6 look fully overlapping (-12 to 3e-7)
    "scale-1e-6": dict(logme=Finite(-1, 0), sfda=FINITE, gbc=Equals(-12, atol=1e-6), ped=Moves()),
    # LogME is scale-invariant only up to its 1e-5 terms: -0.59 unscaled, -1.98 at x 1e6, -4.05 at x 1e12
    "scale-1e6": dict(logme=Finite(-3, -1), sfda=FINITE, gbc=FINITE, ped=Moves()),
    "scale-1e-12": dict(logme=SINGULAR, sfda=FINITE, gbc=Equals(-12), ped=Moves()),
    "scale-1e12": dict(logme=Finite(-5, -3), sfda=FINITE, gbc=FINITE, ped=Moves()),
    "scale-1e-150": dict(logme=SINGULAR, sfda=FINITE, gbc=Equals(-12), ped=Moves()),
    "scale-1e150": dict(logme=TOO_LARGE, sfda=TOO_LARGE, gbc=TOO_LARGE, ped=TOO_LARGE),
    # squares underflow: distances and variances would lose all their digits
    "scale-1e-200": dict(logme=TOO_SMALL, sfda=TOO_SMALL, gbc=TOO_SMALL, ped=TOO_SMALL),
}


def _n_classes(labels):
    return np.unique(labels).shape[0]


def _variants(lib, score, features, labels):
    if score == "logme":
        return [lambda: lib.logme(features, labels), lambda: lib.logme(features, labels, exact_dimension=True)]
    if score == "sfda":
        return [lambda s=s: lib.sfda(features, labels, shrinkage=s) for s in (None, 0.5)]
    if score == "gbc":
        return [lambda c=c: lib.gbc(features, labels, covariance=c) for c in ("spherical", "diagonal")]
    return [lambda: lib.ped(features, labels)]


def _score_range(score, labels):
    if score == "sfda":
        return 0.0, 1.0 + 1e-12
    if score == "gbc":
        return -_n_classes(labels) * (_n_classes(labels) - 1) - 1e-9, 0.0
    return -math.inf, math.inf


def _check(outcome, score, features, labels, call):
    if isinstance(outcome, Refused):
        with pytest.raises(PedrankValueError, match=outcome.match) as info:
            call()
        message = str(info.value)
        assert ":" in message and len(message) > 30, message
        return
    result = call()
    if score == "ped":
        assert result.features.shape == features.shape
        assert np.isfinite(result.features).all()
        assert np.isfinite(result.energies).all() and np.isfinite(result.movements).all()
        assert len(result.energies) == result.steps + 1
        if isinstance(outcome, Moves):
            assert result.steps >= 1 and not np.array_equal(result.features, features), result.steps
        else:
            assert isinstance(outcome, Still), outcome
            assert result.steps == 0 and result.coincident_pairs == outcome.coincident_pairs
            np.testing.assert_array_equal(result.features, features)
        return
    value = float(result)
    assert np.isfinite(value), value
    low, high = _score_range(score, labels)
    if isinstance(outcome, Equals):
        assert abs(value - outcome.value) <= outcome.atol, (value, outcome)
    else:
        assert isinstance(outcome, Finite), outcome
        low = low if outcome.low is None else outcome.low
        high = high if outcome.high is None else outcome.high
    assert low < value <= high or (score != "sfda" and value == low), (value, low, high)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("score", ["logme", "sfda", "gbc", "ped"])
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_expected_outcome(implementation, score, case):
    lib = IMPLEMENTATIONS[implementation]
    features, labels = CASES[case]()
    outcome = EXPECTED[case][score]
    with warnings.catch_warnings():
        # Overflow/underflow warnings on the way are allowed; what comes out is checked.
        warnings.simplefilter("ignore", RuntimeWarning)
        for call in _variants(lib, score, features, labels):
            _check(outcome, score, features, labels, call)


def test_every_case_has_an_expected_outcome():
    assert set(EXPECTED) == set(CASES)
    assert all(set(row) == {"logme", "sfda", "gbc", "ped"} for row in EXPECTED.values())


def test_logme_default_is_inflated_above_exact_dimension_when_d_exceeds_n():
    for case in ("D>N", "D>>N"):
        features, labels = CASES[case]()
        for lib in IMPLEMENTATIONS.values():
            assert lib.logme(features, labels) > lib.logme(features, labels, exact_dimension=True) + 1


# ------------------------------------------------------------------------------------ README agreement

#: The page that holds the table (it was the README's "### Degenerate inputs"; now a section of the robustness page).
README = Path(__file__).resolve().parents[1] / "docs" / "robustness.md"

#: README row label -> the cases it covers.
README_ROWS = {
    "one class with a single sample": ["one-sample-class"],
    "every class one sample (C = N), or N = 2": ["every-class-one-sample", "two-samples"],
    "C = N - 1": ["classes-close-to-samples"],
    "D > N, D >> N (300 x 6)": ["D>N", "D>>N"],
    "constant feature column": ["constant-column"],
    "all samples identical (rank 1)": ["all-samples-identical"],
    "all-zero features": ["all-zero"],
    "duplicated samples": ["duplicated-samples"],
    "samples identical within each class": ["identical-within-class"],
    "two classes with equal means": ["coincident-class-means"],
    "3 samples of 200 in one class": ["imbalanced-3-of-200"],
    "features x 1e-6": ["scale-1e-6"],
    "features x 1e6": ["scale-1e6"],
    "features x 1e-12 or 1e-150": ["scale-1e-12", "scale-1e-150"],
    "features x 1e12": ["scale-1e12"],
    "features x 1e150": ["scale-1e150"],
    "features x 1e-200": ["scale-1e-200"],
}


def _readme_table():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Degenerate inputs", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert header == ["case", "LogME", "SFDA", "GBC", "PED"], header
    table = {}
    for line in rows[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        previous = None
        parsed = []
        for cell in cells[1:]:
            cell = previous if cell.lower().startswith("same") else cell
            parsed.append(cell)
            previous = cell
        table[cells[0]] = dict(zip(["logme", "sfda", "gbc", "ped"], parsed))
    return table


def _readme_outcome(cell, n_classes):
    """What a README cell claims: ('refused',), ('finite',), ('moves',), ('still', pairs) or ('equals', value)."""
    lower = cell.lower()
    if lower.startswith("error"):
        return ("refused",)
    if lower.startswith("finite"):
        return ("finite",)
    if lower.startswith("moves"):
        return ("moves",)
    if lower.startswith("0 steps"):
        pairs = re.search(r"coincident_pairs = (\d+)", cell)
        return ("still", int(pairs.group(1)) if pairs else 0)
    token = re.match(r"(-C\(C-1\)|-?\d+(?:\.\d+)?)", cell)
    assert token, f"README cell {cell!r}: expected error/finite/moves/0 steps or a value"
    value = -n_classes * (n_classes - 1) if token.group(1) == "-C(C-1)" else float(token.group(1))
    return ("equals", float(value))


def _expected_outcome(outcome):
    if isinstance(outcome, Refused):
        return ("refused",)
    if isinstance(outcome, Finite):
        return ("finite",)
    if isinstance(outcome, Moves):
        return ("moves",)
    if isinstance(outcome, Still):
        return ("still", outcome.coincident_pairs)
    return ("equals", float(outcome.value))


def test_readme_table_agrees_with_expected():
    table = _readme_table()
    assert set(table) == set(README_ROWS), set(table) ^ set(README_ROWS)
    assert sorted(case for cases in README_ROWS.values() for case in cases) == sorted(CASES)
    for row, cases in README_ROWS.items():
        for case in cases:
            n_classes = _n_classes(CASES[case]()[1])
            for score, cell in table[row].items():
                claimed = _readme_outcome(cell, n_classes)
                assert claimed == _expected_outcome(EXPECTED[case][score]), (row, case, score, cell)


def test_readme_table_refusals_name_the_reason():
    # The README's error cells say why, in the words of the refusal the test expects.
    table = _readme_table()
    assert "within-class scatter is zero" in table["samples identical within each class"]["sfda"]
    assert "carry no information" in table["all-zero features"]["logme"]
    assert "beyond 1e150" in table["features x 1e150"]["logme"]
    assert "below 1e-150" in table["features x 1e-200"]["logme"]


def test_ped_without_overlap_returns_the_features_unchanged_and_no_steps():
    # Radius 0 or clusters far apart: the first step moves nothing (the authors divide 0 by 0).
    features, labels = _clusters(30, 4, 3)
    features = features + labels[:, None] * 100.0
    for lib in IMPLEMENTATIONS.values():
        result = lib.ped(features, labels)
        assert result.steps == 0 and result.movements == []
        np.testing.assert_array_equal(result.features, features)


def test_ped_counts_coincident_class_means_instead_of_dividing_by_zero():
    features, labels = _coincident_class_means()
    for lib in IMPLEMENTATIONS.values():
        result = lib.ped(features, labels)
        assert result.coincident_pairs == 1
        assert result.steps == 0
        np.testing.assert_array_equal(result.features, features)


def test_one_sample_class_takes_part_in_every_score():
    # The singleton class must count (not be dropped): moving its sample changes the score.
    features, labels = _one_sample_class()
    moved = features.copy()
    moved[0] += 5.0
    for lib in IMPLEMENTATIONS.values():
        for score in (lib.logme, lib.sfda, lib.gbc):
            assert score(features, labels) != score(moved, labels)
