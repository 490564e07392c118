"""Inputs that used to give a plausible answer instead of an error: each test here failed before its fix.

- labels whose missing values hide in an object or datetime array (NaN in a pandas object column, NaT) became a
  class of their own;
- NCE on "source labels" with one distinct value per sample (a probability or a logit passed instead of the argmax)
  was 0, its maximum, whatever the target;
- a pool whose model names collide as text (``1`` and ``"1"``) showed one model's score twice, the other lost, under
  ``confidence=`` and several metrics;
- a pool whose models were scored on different target data (a label file of another split or size) was ranked as
  if the scores were comparable, by ``rank``, its pool scores, its bootstrap and the CLI;
- ``pedrank rank DIR --labels y.npy`` left the plain ``.npy`` models of DIR out of the pool without a word;
- a PED reference given for a model name not in the pool was ignored (the misspelt model ran PED on its own
  statistics);
- ``evaluate`` (and ``pedrank evaluate`` on a scores file) kept one of two records of the same model, and one of
  two accuracies whose keys are the same text;
- ``rank(..., errors="row")`` where no model could be scored returned a table whose first row (a failed model)
  read as the best, without a word.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pedrank
import pedrank.reference
from pedrank.workflow.io import find_features


def _problem(n_samples=60, n_features=8, n_classes=3, seed=0, separation=1.0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_samples // n_classes)
    centres = rng.normal(scale=separation, size=(n_classes, n_features))
    return centres[labels] + rng.normal(size=(n_samples, n_features)), labels


def _cli(*args):
    package_parent = str(Path(pedrank.__file__).resolve().parents[1])
    return subprocess.run([sys.executable, "-m", "pedrank.frontends.cli", *map(str, args)], capture_output=True,
                          text=True, env={"PYTHONPATH": package_parent, "PATH": "/usr/bin:/bin"}, timeout=120)


# ------------------------------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("metric", ["logme", "sfda", "knn"])
def test_nan_hidden_in_object_labels_is_refused(metric):
    features, labels = _problem()
    hidden = labels.astype(object)
    hidden[3] = float("nan")  # what a pandas object column holds for a missing value
    with pytest.raises(pedrank.PedrankValueError, match=r"labels: found 1 missing label\(s\).*first at index 3"):
        pedrank.score(features, hidden, metric)
    hidden[3] = np.float32("nan")
    with pytest.raises(pedrank.PedrankValueError, match=r"missing label"):
        pedrank.score(features, hidden, metric)
    # Object labels without a missing value score as before, and the text "nan" is a class name, not missing.
    assert pedrank.score(features, labels.astype(object), metric) == pedrank.score(features, labels, metric)
    names = np.array(["cat", "dog", "nan"], dtype=object)[labels]
    assert pedrank.score(features, names, metric) == pedrank.score(features, labels, metric)


def test_nat_label_is_refused_and_dates_are_still_labels():
    features, labels = _problem()
    dates = labels.astype("datetime64[D]")
    assert pedrank.logme(features, dates) == pedrank.logme(features, labels)
    dates[0] = np.datetime64("NaT")
    with pytest.raises(pedrank.PedrankValueError,
                       match=r"missing label\(s\) \(NaN/inf/NaT/None/NA, first at index 0\)"):
        pedrank.logme(features, dates)


# ------------------------------------------------------------------------------------------------------ NCE


def test_nce_refuses_one_source_class_per_sample():
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    # a continuous value instead of the argmax: refused as regression targets by the shared label check
    with pytest.raises(pedrank.PedrankValueError, match=r"source_labels: .* look like continuous values.*the argmax"):
        pedrank.nce(rng.uniform(0.3, 1.0, size=60), labels)
    # one distinct source class per sample (sample ids instead of predictions): NCE's own check
    top_probability = rng.permutation(60)
    with pytest.raises(pedrank.PedrankValueError, match=r"source_labels: found 60 distinct values .* NCE would be 0"):
        pedrank.nce(top_probability, labels)
    with pytest.raises(pedrank.PedrankValueError, match=r"every sample is a source class of its own"):
        pedrank.reference.nce(top_probability, labels)
    with pytest.raises(pedrank.PedrankValueError, match=r"every sample is a source class of its own"):
        pedrank.rank({"probabilities": top_probability, "argmax": rng.integers(0, 5, size=60)}, labels,
                     metric="nce")
    # Hard predictions score as before (in [-ln C, 0], equal to the reference).
    predictions = rng.integers(0, 5, size=60)
    assert pedrank.nce(predictions, labels) == pytest.approx(pedrank.reference.nce(predictions, labels), abs=1e-15)
    assert -np.log(3) <= pedrank.nce(predictions, labels) < 0


# ------------------------------------------------------------------------------------------------------ rank names


@pytest.mark.parametrize("options", [{"metric": "logme"}, {"metric": "logme", "confidence": 5},
                                     {"metric": ["logme", "sfda"]}, {"metric": "ncti"}])
def test_model_names_that_collide_as_text_are_refused(options):
    features, labels = _problem()
    pool = {1: features, "1": features[:, :3]}
    with pytest.raises(pedrank.PedrankValueError, match=r"pool: the model names 1 and '1' are both '1' as text"):
        pedrank.rank(pool, labels, **options)


def test_a_reference_for_a_model_not_in_the_pool_is_refused():
    features, labels = _problem()
    pool = {"vit": features, "resnet": features[:, :3]}
    # Before: the misspelt name was ignored and 'vit' moved by PED on its own statistics.
    with pytest.raises(pedrank.PedrankValueError, match=r"references: no model 'vit_b16' in the pool \(vit, resnet\)"):
        pedrank.rank(pool, labels, metric="logme", ped=True, references={"vit_b16": features[:30]})
    table = pedrank.rank(pool, labels, metric="logme", ped=True, references={"vit": features[:30]})
    assert table.models == ["vit", "resnet"]


# ------------------------------------------------------------------------------------------------------ same target


@pytest.mark.parametrize("options", [{"metric": "logme"}, {"metric": "logme", "errors": "row"},
                                     {"metric": ["logme", "sfda"]}, {"metric": "etran"}])
def test_models_scored_on_different_targets_are_not_ranked(options):
    features, labels = _problem()
    # Before: LogME ranked the 30-row model 'subset' against the 60-row one as if on the same data.
    pool = {"full": (features, labels), "subset": (features[::2], labels[::2])}
    with pytest.raises(pedrank.PedrankValueError,
                       match=r"models 'full' and 'subset' were scored on different target data: 'full' on 60 rows "
                             r"in 3 classes \(sizes 20, 20, 20\), 'subset' on 30 rows"):
        pedrank.rank(pool, **options)


class _Recorded:
    """Features that note when a score reads them."""

    def __init__(self, array, reads):
        self.array, self.reads = array, reads

    def __array__(self, dtype=None, copy=None):
        self.reads.append(self.array.shape)
        return self.array if dtype is None else self.array.astype(dtype)


@pytest.mark.parametrize("options", [{"metric": "logme"}, {"metric": "logme", "errors": "row"},
                                     {"metric": ["logme", "sfda"]}, {"metric": "etran"}])
def test_a_pool_of_other_data_is_refused_before_the_rest_is_scored(options):
    features, labels = _problem()
    reads = []
    # Before: every model was scored (minutes each for PACTran on real shapes) and the pool refused at the end.
    pool = {"full": (features, labels), "subset": (features[::2], labels[::2]),
            "later": (_Recorded(features, reads), labels)}
    with pytest.raises(pedrank.PedrankValueError, match=r"models 'full' and 'subset' were scored on different"):
        pedrank.rank(pool, **options)
    assert reads == []
    pedrank.rank({"full": (features, labels), "later": (_Recorded(features, reads), labels)}, **options)
    assert reads  # the recorder does see a read


def test_other_class_sizes_are_a_different_target_but_not_another_order():
    features, labels = _problem()
    merged = np.where(labels == 2, 1, labels)  # the label file of another task on the same images
    with pytest.raises(pedrank.PedrankValueError, match=r"'b' on 60 rows in 2 classes \(sizes 20, 40\)"):
        pedrank.rank({"a": (features, labels), "b": (features, merged)}, metric="sfda")
    # The same target in another row order, or with other class names, is ranked; a failed model does not count.
    other, _ = _problem(seed=1, separation=0.3)
    order = np.random.default_rng(0).permutation(labels.shape[0])
    pool = {"a": (features, labels), "shuffled": (other[order], labels[order] + 1),
            "named": (other, np.array(["x", "y", "z"])[labels]), "short": (features[:10], labels)}
    table = pedrank.rank(pool, metric="logme", errors="row")
    assert table.models[0] == "a" and set(table.errors) == {"short"}
    assert table.scores["shuffled"] == pytest.approx(table.scores["named"], rel=1e-12)


def test_cli_refuses_label_files_of_different_targets(tmp_path):
    features, labels = _problem()
    np.savez(tmp_path / "a.npz", features=features, labels=labels)
    np.savez(tmp_path / "b.npz", features=features[:30], labels=labels[:30])
    done = _cli("rank", tmp_path, "--metric", "logme", "--no-progress")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "were scored on different target data" in done.stderr and "rank" not in done.stdout


# ------------------------------------------------------------------------------------------------------ CLI folder


def test_plain_npy_models_beside_shared_labels_are_not_dropped(tmp_path):
    features, labels = _problem()
    folder = tmp_path / "pool"
    folder.mkdir()
    np.save(folder / "a.npy", features)
    np.save(folder / "b.npy", features[:, :3])
    np.savez(folder / "c.npz", features=features[:, :2], labels=labels)
    np.save(tmp_path / "labels.npy", labels)
    with pytest.raises(pedrank.PedrankValueError, match=r"holds plain \.npy file\(s\) \(a\.npy, b\.npy\) that a "
                                                         r"directory scan does not read"):
        find_features(folder, labels=tmp_path / "labels.npy")
    done = _cli("rank", folder, "--labels", tmp_path / "labels.npy", "--metric", "logme", "--no-progress")
    assert done.returncode == 2 and "a.npy, b.npy" in done.stderr, done.stdout + done.stderr
    # Given as files they are ranked, and a labels file inside the folder is not taken for a model.
    np.save(folder / "labels.npy", labels)
    (folder / "c.npz").unlink()
    done = _cli("rank", folder / "a.npy", folder / "b.npy", "--labels", folder / "labels.npy", "--metric", "logme",
                "--json", "-", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert [r["model"] for r in json.loads(done.stdout)] == ["a", "b"]
    with pytest.raises(pedrank.PedrankValueError, match=r"\(a\.npy, b\.npy\)"):
        find_features(folder, labels=folder / "labels.npy")
    # A folder of archives with the shared labels file inside it is found as before.
    (folder / "a.npy").unlink()
    (folder / "b.npy").unlink()
    np.savez(folder / "c.npz", features=features[:, :2], labels=labels)
    assert list(find_features(folder, labels=folder / "labels.npy")) == ["c"]


# ------------------------------------------------------------------------------------------------------ evaluate


def test_evaluate_refuses_a_model_given_twice():
    accuracies = {"a": 0.9, "b": 0.8, "c": 0.7}
    records = [{"model": "a", "score": 1.0}, {"model": "b", "score": 2.0}, {"model": "a", "score": 3.0}]
    with pytest.raises(pedrank.PedrankValueError, match=r"scores: model 'a' is given twice"):
        pedrank.evaluate(records, accuracies)
    with pytest.raises(pedrank.PedrankValueError, match=r"scores: model '1' is given twice"):
        pedrank.evaluate({1: 1.0, "1": 2.0, "b": 0.5}, {"1": 0.9, "b": 0.5})
    with pytest.raises(pedrank.PedrankValueError, match=r"accuracies: model '1' is given twice"):
        pedrank.evaluate({"a": 1.0, "b": 2.0}, {"a": 0.9, "b": 0.8, 1: 0.3, "1": 0.5})


def test_evaluate_cli_refuses_a_scores_file_naming_a_model_twice(tmp_path):
    (tmp_path / "scores.csv").write_text("model,score\na,1.0\nb,2.0\na,3.0\n")
    (tmp_path / "truth.csv").write_text("model,accuracy\na,0.9\nb,0.8\n")
    done = _cli("evaluate", tmp_path / "scores.csv", "--truth", tmp_path / "truth.csv")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "record 2: model 'a' appears again" in done.stderr


def test_evaluate_names_an_accuracy_that_is_not_a_number():
    with pytest.raises(pedrank.PedrankValueError, match=r"accuracies\['b'\]: found 'x'; expected a number"):
        pedrank.evaluate({"a": 1.0, "b": 2.0}, {"a": 0.9, "b": "x"})
    # A table, its scores and its records are judged as before.
    features, labels = _problem()
    other, _ = _problem(seed=1, separation=0.3)
    table = pedrank.rank({"a": features, "b": other, "c": other[:, :2]}, labels, metric="logme")
    accuracies = {"a": 0.9, "b": 0.6, "c": 0.5}
    assert pedrank.evaluate(table, accuracies) == pedrank.evaluate(dict(table.scores), accuracies)
    assert pedrank.evaluate(table.to_records(), accuracies).kendall_tau == pytest.approx(1.0)


# --- regression targets passed as class labels --------------------------------------------------------------------

def test_continuous_float_labels_are_refused_as_regression_targets():
    """Before: each fractional value became a class of one sample and every score returned a number (LogME
    -0.27, SFDA 1.0 on noise) that measures nothing; rank ordered the models by it."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(100, 8))
    targets = rng.normal(size=100)
    for call in (lambda: pedrank.logme(features, targets), lambda: pedrank.score(features, targets, "sfda"),
                 lambda: pedrank.rank({"a": features, "b": features * 2 + 1}, targets)):
        with pytest.raises(pedrank.PedrankValueError, match="look like continuous values.*regression=True"):
            call()
    assert np.isfinite(pedrank.logme(features, targets, regression=True))  # the way the message names


def test_class_labels_stored_as_floats_still_work():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(100, 8))
    as_ints = np.repeat(np.arange(4), 25)
    # integer-valued floats (a torch dataset's labels), even one class per sample (documented: C = N is finite)
    assert pedrank.logme(features, as_ints.astype(np.float32)) == pedrank.logme(features, as_ints)
    assert np.isfinite(pedrank.logme(features, np.arange(100, dtype=float)))
    # fractional class names, several samples each
    assert pedrank.logme(features, as_ints + 0.5) == pedrank.logme(features, as_ints)


def _regression_pool():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 16))
    targets = features[:, 0] + 0.1 * rng.normal(size=300)
    return {"a": features, "b": features + 3 * rng.normal(size=(300, 16))}, targets


def test_rank_takes_regression_targets_with_regression_true():
    """The pool check of the targets (one model's labels against another's) must not refuse what the metric takes:
    rank(..., regression=True) of continuous targets ranks as pedrank.logme / pedrank.knn score them."""
    pool, targets = _regression_pool()
    for metric in ("logme", "knn"):
        table = pedrank.rank(pool, targets, metric=metric, regression=True)
        assert table.scores == {m: pedrank.score(x, targets, metric, regression=True) for m, x in pool.items()}
    agreement = pedrank.rank(pool, targets, metric=["logme", "knn"], regression=True)
    assert [r.model for r in agreement.consensus][0] == "a"


def test_confidence_resamples_regression_targets_as_rows():
    """Before: the stratified bootstrap took each distinct target value as a class of one row, so every resample was
    the identity and the interval had zero width (a certainty that measured nothing)."""
    pool, targets = _regression_pool()
    table = pedrank.rank(pool, targets, metric="logme", regression=True, confidence=20, random_state=0)
    best = table[0]
    assert best.model == "a" and best.score_low < best.score < best.score_high
    again = pedrank.rank(pool, targets, metric="logme", regression=True, confidence=20, random_state=0)
    assert [(r.score_low, r.score_high) for r in again] == [(r.score_low, r.score_high) for r in table]


# ------------------------------------------------------------------------------------- a pool with no score


@pytest.mark.parametrize("options", [{}, {"confidence": 3}, {"metric": ["logme", "gbc"]}, {"metric": "ncti"}])
def test_a_pool_where_no_model_got_a_score_warns(options):
    features, labels = _problem()
    dead = {"dead_a": np.ones_like(features), "dead_b": np.zeros_like(features)}
    options = {"metric": "logme", **options}
    with pytest.warns(UserWarning, match=r"^rank: none of the 2 model\(s\) got a .* score .*the first: dead_a: "):
        result = pedrank.rank(dead, labels, errors="row", progress=False, **options)
    tables = result.tables.values() if hasattr(result, "tables") else [result]
    for table in tables:
        assert set(table.errors) == {"dead_a", "dead_b"}


def test_a_pool_with_one_score_does_not_warn_about_it():
    import warnings

    features, labels = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = pedrank.rank({"good": features, "dead": np.ones_like(features)}, labels, metric="logme",
                             errors="row", progress=False)
    assert table.models == ["good", "dead"]


# ------------------------------------------------------------------------------------------ unknown options


@pytest.mark.parametrize("call", [
    lambda X, y: pedrank.score(X, y, "logme", shrinkage=0.5),
    lambda X, y: pedrank.reference.score(X, y, "logme", shrinkage=0.5),
    lambda X, y: pedrank.rank({"a": X, "b": 2 * X}, y, metric="logme", shrinkage=0.5, progress=False),
    lambda X, y: pedrank.rank({"a": X, "b": 2 * X}, y, metric="ncti", shrinkage=0.5, progress=False),
])
def test_an_option_the_metric_does_not_take_is_named_with_the_ones_it_does(call):
    # It was Python's TypeError from inside the score ("logme() got an unexpected keyword argument").
    features, labels = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=r"^shrinkage: not an option of '(logme|ncti)'; expected one "
                                                        r"of \[.*'(exact_dimension|n_components)'"):
        call(features, labels)


def test_a_plain_npy_in_a_pool_takes_the_labels_given_to_rank(tmp_path):
    # It was refused with "... or give labels" although labels were given.
    features, labels = _problem()
    np.save(tmp_path / "a.npy", features)
    from_file = pedrank.rank({"a": str(tmp_path / "a.npy"), "b": 2 * features + 1}, labels, metric="logme",
                             progress=False)
    in_memory = pedrank.rank({"a": features, "b": 2 * features + 1}, labels, metric="logme", progress=False)
    assert from_file.scores == in_memory.scores
    with pytest.raises(pedrank.PedrankValueError, match=r"a\.npy: labels must be 1-D with one label per row of the "
                                                        r"features \(60\), found shape \(40,\)"):
        pedrank.rank({"a": str(tmp_path / "a.npy")}, labels[:40], metric="logme", progress=False)


def test_a_feature_file_with_its_own_labels_keeps_them(tmp_path):
    features, labels = _problem()
    np.save(tmp_path / "m_d_feature.npy", features)
    np.save(tmp_path / "m_d_label.npy", labels)
    table = pedrank.rank({"m": str(tmp_path / "m_d_feature.npy")}, labels[::-1].copy(), metric="logme",
                         progress=False)
    assert table.scores["m"] == pedrank.logme(features, labels)


# ------------------------------------------------------------------------------------ flags and regression targets


@pytest.mark.parametrize(("call", "name"), [
    (lambda X, y: pedrank.logme(X, y, regression="False"), "regression"),
    (lambda X, y: pedrank.logme(X, y, exact_dimension=1), "exact_dimension"),
    (lambda X, y: pedrank.knn(X, y, regression="no"), "regression"),
    (lambda X, y: pedrank.gbc(X, y, exact_logdet="no"), "exact_logdet"),
    (lambda X, y: pedrank.parc(X, y, exact=None), "exact"),
    (lambda X, y: pedrank.etran(X, y, log="yes"), "log"),
    (lambda X, y: pedrank.pactran(X, y, unit_scale=0), "unit_scale"),
    (lambda X, y: pedrank.LogME(regression="False").fit(X, y), "regression"),
])
def test_a_flag_that_is_not_a_bool_is_refused(call, name):
    # logme(regression="False") ran a regression on the class ids (the string is true) and returned -1.44.
    features, labels = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=rf"^{name}: expected True or False, found "):
        call(features, labels)


def test_numpy_bools_are_flags():
    features, labels = _problem()
    assert pedrank.logme(features, labels, exact_dimension=np.bool_(True)) == pedrank.logme(
        features, labels, exact_dimension=True)


@pytest.mark.parametrize("score", ["logme", "knn"])
@pytest.mark.parametrize("targets", [np.zeros(60), np.full(60, 3.5), np.ones((60, 2))])
def test_constant_regression_targets_are_refused(score, targets):
    # LogME scored a constant target 7.42, above a well-predicted one (0.61); k-NN blamed the features' scale.
    features, _ = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=r"^labels: every regression target is constant"):
        getattr(pedrank, score)(features, targets, regression=True)


@pytest.mark.parametrize("factor", [1e-200, 1e200])
def test_regression_targets_beyond_float64_squares_are_refused(factor):
    features, _ = _problem()
    targets = features[:, 0] * factor
    with pytest.raises(pedrank.PedrankValueError, match=r"^labels: found regression targets of magnitude up to "):
        pedrank.logme(features, targets, regression=True)


def test_a_constant_column_beside_a_varying_one_is_kept():
    # a label absent from these rows of a multi-label 0/1 matrix
    features, _ = _problem()
    targets = np.column_stack([features[:, 0] > 0, np.zeros(60)]).astype(float)
    assert np.isfinite(pedrank.logme(features, targets, regression=True))


# ------------------------------------------------------------------------------- masks, None, mixed label types


@pytest.mark.parametrize("labels", [
    pytest.param(lambda y: np.array(y, dtype=object).tolist()[:5] + [None] + np.array(y).tolist()[6:], id="None"),
    pytest.param(lambda y: __import__("pandas").array([str(v) for v in y[:5]] + [None] + [str(v) for v in y[6:]],
                                                      dtype="string"), id="pandas-NA"),
])
def test_none_and_pandas_na_are_missing_labels(labels):
    # They were refused as "could not be sorted ... expected values of one type", which names no missing value.
    pytest.importorskip("pandas")
    features, y = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=r"^labels: found 1 missing label\(s\) \(NaN/inf/NaT/None/NA, "
                                                        r"first at index 5\)"):
        pedrank.logme(features, labels(y))


def test_labels_mixing_text_and_numbers_are_refused():
    # NumPy turned the list into text: 1 and "1" became one class, silently.
    features, y = _problem()
    mixed = [str(v) if i % 2 else int(v) for i, v in enumerate(y)]
    with pytest.raises(pedrank.PedrankValueError, match=r"^labels: found text mixed with other values \(e\.g\. 0 of "
                                                        r"type int\)"):
        pedrank.logme(features, mixed)
    assert pedrank.logme(features, [str(v) for v in y]) == pedrank.logme(features, y)  # one type is fine


@pytest.mark.parametrize("what", ["features", "labels"])
def test_a_masked_array_with_masked_values_is_refused(what):
    # NumPy's conversions dropped the mask: the values under it were scored.
    features, y = _problem()
    mask = np.zeros(features.shape if what == "features" else y.shape, dtype=bool)
    mask[3] = True
    arrays = {"features": features, "labels": y}
    arrays[what] = np.ma.array(arrays[what], mask=mask)
    with pytest.raises(pedrank.PedrankValueError, match=rf"^{what}: found a masked array with \d+ masked value"):
        pedrank.logme(arrays["features"], arrays["labels"])
    # a masked array without masked values is its data
    assert pedrank.logme(np.ma.array(features), np.ma.array(y)) == pedrank.logme(features, y)


def test_a_pool_entry_with_a_misspelt_key_is_refused():
    features, y = _problem()
    with pytest.raises(pedrank.PedrankValueError, match=r"pool\['a'\]: found the key\(s\) \['lables'\]; expected "
                                                        r"'features' and optionally 'labels' and 'reference'"):
        pedrank.rank({"a": {"features": features, "lables": y[::-1]}}, y, metric="logme", progress=False)
