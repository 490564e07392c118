"""How sure is the ranking: rank(..., confidence=B), several metrics (Agreement), the CLI's output and the plot."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pedrank
from pedrank.frontends.cli import main
from pedrank.workflow.confidence import Agreement, read_ranking, stratified_bootstrap
from pedrank.workflow.entry import RankRecord
from pedrank.workflow.rank import RankTable

N, D, C = 90, 6, 3
LABELS = np.arange(N) % C
B = 30


def _model(separation, seed, n=N, d=D):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=separation, size=(C, d))
    return centres[np.arange(n) % C] + rng.normal(size=(n, d))


def _clear_pool():
    """One model far better than the others: its classes are 10x further apart."""
    return {"strong": _model(3.0, 1), "mid": _model(1.0, 3), "weak": _model(0.3, 2)}


def _twins_pool():
    """Two models with the same features (a tie on every resample) and a weak third."""
    twin = _model(1.0, 3)
    return {"twin-a": twin, "twin-b": twin.copy(), "weak": _model(0.3, 2)}


def _rings_and_linear(n=120, seed=0):
    """Two models that a neighbour score and a linear score rank in opposite orders: concentric rings (pure
    neighbourhoods, no linear separation) and a weak mean shift in noise (linear, with mixed neighbourhoods)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(labels == 0, 1.0, 3.0) + rng.normal(scale=0.15, size=n)
    rings = np.c_[radius * np.cos(angle), radius * np.sin(angle), rng.normal(size=(n, 2)) * 0.1]
    linear = np.c_[labels * 1.2 + rng.normal(size=n), rng.normal(size=(n, 3))]
    return {"rings": rings, "linear": linear}, labels


def _without_seconds(table):
    return [{k: v for k, v in r.__dict__.items() if k != "seconds"} for r in table]


# ------------------------------------------------------------------------------------------ the resamples


def test_stratified_bootstrap_keeps_every_class_size_and_draws_within_each_class():
    labels = np.array([0] * 5 + [1] * 12 + [2] * 3)
    rng = np.random.default_rng(7)
    encoded = rng.permutation(labels)
    draws = list(stratified_bootstrap(encoded, 40, seed=3))
    assert len(draws) == 40
    for rows in draws:
        assert rows.shape == (20,)
        assert np.array_equal(np.bincount(encoded[rows], minlength=3), [5, 12, 3])
    # with replacement: some resample repeats a row; and not every resample is the same
    assert any(len(np.unique(rows)) < 20 for rows in draws)
    assert len({rows.tobytes() for rows in draws}) > 30
    again = list(stratified_bootstrap(encoded, 40, seed=3))
    assert all(np.array_equal(a, b) for a, b in zip(draws, again))
    other = list(stratified_bootstrap(encoded, 40, seed=4))
    assert not all(np.array_equal(a, b) for a, b in zip(draws, other))


# ------------------------------------------------------------------------------------------ one metric


def test_a_clear_winner_is_best_on_almost_every_resample():
    table = pedrank.rank(_clear_pool(), LABELS, metric="sfda", confidence=B, random_state=0)
    assert table.models[0] == "strong"
    assert table[0].p_best > 0.95
    assert table.top1_stability == table[0].p_best
    assert sum(r.p_best for r in table) == pytest.approx(1.0)
    assert table.n_resamples == B and table.seed == 0
    for position, record in enumerate(table, start=1):
        assert record.rank_low <= position <= record.rank_high
        assert record.score_low <= record.score_high
        assert record.failed_resamples == 0
        assert table.bootstrap_scores[record.model].shape == (B,)
    assert table.separation_warning() is None


def test_two_identical_models_split_the_first_place():
    table = pedrank.rank(_twins_pool(), LABELS, metric="logme", confidence=B, random_state=0)
    twins = {r.model: r for r in table if r.model.startswith("twin")}
    assert set(twins) == {"twin-a", "twin-b"}
    for record in twins.values():
        assert 0.3 <= record.p_best <= 0.7
        assert record.rank_low == 1  # tied scores share the better rank
    assert twins["twin-a"].p_best == twins["twin-b"].p_best
    assert table.top1_stability < 0.8
    warning = table.separation_warning()
    assert warning is not None and "twin-a" in warning and "twin-b" in warning
    assert warning.endswith("not separated; fine-tune both")
    assert table.separation_warning(threshold=0.4) is None


def test_point_scores_are_the_plain_ranking_and_the_seed_fixes_the_intervals():
    pool = _clear_pool()
    plain = pedrank.rank(pool, LABELS, metric="gbc", ped=True)
    first = pedrank.rank(pool, LABELS, metric="gbc", ped=True, confidence=20, random_state=5)
    again = pedrank.rank(pool, LABELS, metric="gbc", ped=True, confidence=20, random_state=5)
    other = pedrank.rank(pool, LABELS, metric="gbc", ped=True, confidence=20, random_state=6)
    assert first.models == plain.models
    assert [r.score for r in first] == [r.score for r in plain]
    assert [r.ped_steps for r in first] == [r.ped_steps for r in plain]
    assert _without_seconds(first) == _without_seconds(again)
    assert all(np.array_equal(first.bootstrap_scores[m], again.bootstrap_scores[m]) for m in pool)
    assert [r.score_low for r in first] != [r.score_low for r in other]
    generator = pedrank.rank(pool, LABELS, metric="gbc", confidence=5, random_state=np.random.default_rng(1))
    generator_again = pedrank.rank(pool, LABELS, metric="gbc", confidence=5, random_state=np.random.default_rng(1))
    assert generator.seed == generator_again.seed
    assert _without_seconds(generator) == _without_seconds(generator_again)


def test_each_resample_is_the_score_of_the_resampled_rows_with_ped_run_on_them():
    pool = _clear_pool()
    features = pool["mid"].copy()
    table = pedrank.rank(pool, LABELS, metric="sfda", ped={"radius": 0.6}, confidence=4, random_state=11)
    for b, rows in enumerate(stratified_bootstrap(LABELS, 4, seed=11)):
        expected = pedrank.score(features[rows], LABELS[rows], "sfda", ped={"radius": 0.6})
        assert table.bootstrap_scores["mid"][b] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(pool["mid"], features)  # the caller's features are only read


def test_the_default_seed_is_zero_and_an_integer_seed_also_reaches_the_metric():
    pool = _clear_pool()
    assert _without_seconds(pedrank.rank(pool, LABELS, metric="logme", confidence=5)) == _without_seconds(
        pedrank.rank(pool, LABELS, metric="logme", confidence=5, random_state=0))
    seeded = pedrank.rank(pool, LABELS, metric="pactran", random_state=3, max_iter=20)
    assert seeded.scores["mid"] == pedrank.pactran(pool["mid"], LABELS, random_state=3, max_iter=20)
    assert seeded.scores["mid"] != pedrank.pactran(pool["mid"], LABELS, random_state=0, max_iter=20)


def test_an_executor_gives_the_serial_table():
    pool = _clear_pool()
    serial = pedrank.rank(pool, LABELS, metric="sfda", ped=True, confidence=12, random_state=2)
    with ThreadPoolExecutor(2) as executor:
        parallel = pedrank.rank(pool, LABELS, metric="sfda", ped=True, confidence=12, random_state=2,
                                executor=executor)
    assert _without_seconds(parallel) == _without_seconds(serial)
    assert parallel.top1_stability == serial.top1_stability
    assert all(np.array_equal(parallel.bootstrap_scores[m], serial.bootstrap_scores[m]) for m in pool)


def test_a_failed_model_stays_a_nan_row_without_intervals():
    pool = {**_clear_pool(), "dead": np.ones((N, D))}
    table = pedrank.rank(pool, LABELS, metric="logme", confidence=10, errors="row")
    dead = table[-1]
    assert dead.model == "dead" and math.isnan(dead.score) and "no information" in dead.error
    assert (dead.p_best, dead.rank_low, dead.score_low) == (None, None, None)
    assert "dead" not in table.bootstrap_scores
    assert sum(r.p_best for r in table[:-1]) == pytest.approx(1.0)
    assert max(r.rank_high for r in table[:-1]) <= 3  # ranked among the scored models only
    with pytest.raises(pedrank.PedrankValueError, match="model 'dead'"):
        pedrank.rank(pool, LABELS, metric="logme", confidence=10)


def test_a_pool_score_is_rescored_as_a_pool_on_every_resample():
    pool = _clear_pool()
    plain = pedrank.rank(pool, LABELS, metric="ncti")
    table = pedrank.rank(pool, LABELS, metric="ncti", confidence=3, random_state=4)
    assert table.scores == plain.scores
    for b, rows in enumerate(stratified_bootstrap(LABELS, 3, seed=4)):
        resampled = pedrank.rank({m: (x[rows], LABELS[rows]) for m, x in pool.items()}, metric="ncti")
        for model, value in resampled.scores.items():
            assert table.bootstrap_scores[model][b] == pytest.approx(value, rel=1e-12)


def test_models_with_other_labels_are_refused():
    pool = {"a": (_model(1.0, 1), LABELS), "b": (_model(1.0, 2), np.roll(LABELS, 1))}
    with pytest.raises(pedrank.PedrankValueError, match="'a' and 'b' have different labels"):
        pedrank.rank(pool, metric="logme", confidence=3)


def test_a_gap_smaller_than_the_resamples_shift_is_not_a_separation():
    # LogME with N near D: repeated rows raise both models' bootstrap scores, one by about twice as much as the
    # other, while their measured scores are 0.01 apart. P(best) is 1, but it measures that artefact.
    from pedrank.frontends.demo import digits_model_pool

    train, labels, _, _ = digits_model_pool(models=["rbf-fourier-512", "random-relu-512"])
    table = pedrank.rank(train, labels, metric="logme", confidence=10)
    assert table.models == ["rbf-fourier-512", "random-relu-512"]
    assert table[0].p_best == 1.0
    assert table[0].score - table[1].score < 0.05
    assert table[1].score < table[1].score_low  # the whole interval lies above the measured score
    warning = table.separation_warning()
    assert warning.startswith("rbf-fourier-512 and random-relu-512: the resamples shift their scores by")
    assert warning.endswith("not separated; fine-tune both")
    assert "note: rbf-fourier-512 and random-relu-512" in table.to_string()
    # SFDA moves both by a few thousandths, far less than their gap: no note, no warning
    sfda = pedrank.rank(train, labels, metric="sfda", confidence=10)
    assert sfda.separation_warning() is None and "note:" not in sfda.to_string()


def test_the_shift_check_compares_the_top_two_shifts_with_their_gap():
    def table(low_high):
        records = [RankRecord("a", 1.0, 0.0, p_best=1.0, score_low=low_high[0][0], score_high=low_high[0][1]),
                   RankRecord("b", 0.9, 0.0, p_best=0.0, score_low=low_high[1][0], score_high=low_high[1][1])]
        return RankTable(records, metric="x", n_resamples=10, top1_stability=1.0)

    assert table([(1.1, 1.3), (1.0, 1.1)]).separation_warning() is None  # shifts +0.2 and +0.15: apart by 0.05
    assert "a and b" in table([(1.1, 1.3), (0.9, 1.0)]).separation_warning()  # +0.2 and +0.05: apart by 0.15


@pytest.mark.parametrize("value, match", [(0, "confidence"), (True, "confidence"), ("5", "confidence")])
def test_bad_confidence_is_refused(value, match):
    with pytest.raises(pedrank.PedrankValueError, match=match):
        pedrank.rank(_clear_pool(), LABELS, metric="logme", confidence=value)


def test_bad_seed_is_refused():
    with pytest.raises(pedrank.PedrankValueError, match="random_state"):
        pedrank.rank(_clear_pool(), LABELS, metric="logme", confidence=2, random_state=-1)


def test_records_and_files_carry_the_bootstrap_columns_and_plain_ones_do_not():
    table = pedrank.rank(_clear_pool(), LABELS, metric="logme", confidence=8, dataset="toy")
    records = json.loads(table.to_json())
    assert {"p_best", "rank_low", "rank_high", "score_low", "score_high", "resamples", "top1_stability"} <= set(
        records[0])
    assert records[0]["resamples"] == 8 and records[0]["top1_stability"] == table.top1_stability
    header = table.to_csv().splitlines()[0].split(",")
    assert header[:8] == ["rank", "model", "score", "p_best", "rank_low", "rank_high", "score_low", "score_high"]
    text = table.to_string()
    assert "P(best)" in text.splitlines()[1] and "top-1 stability" in text
    plain = pedrank.rank(_clear_pool(), LABELS, metric="logme")
    assert "p_best" not in json.loads(plain.to_json())[0]
    assert "p_best" not in plain.to_csv().splitlines()[0] and "P(best)" not in plain.to_string()


# ------------------------------------------------------------------------------------------ several metrics


def test_metrics_that_agree():
    pool = _clear_pool()
    agreement = pedrank.rank(pool, LABELS, metric=["sfda", "logme", "gbc"])
    assert isinstance(agreement, Agreement)
    assert agreement.metrics == ["sfda", "logme", "gbc"]
    np.testing.assert_allclose(agreement.kendall_tau, np.ones((3, 3)))
    assert agreement.models == ["strong", "mid", "weak"]
    assert [r.mean_rank for r in agreement.consensus] == [1.0, 2.0, 3.0]
    assert agreement.ties == [] and agreement.separation_warning() is None
    for metric in agreement.metrics:  # each table is the plain one
        plain = pedrank.rank(pool, LABELS, metric=metric)
        assert agreement.tables[metric].scores == plain.scores


def test_metrics_that_disagree_and_the_tie_they_leave():
    pool, labels = _rings_and_linear()
    agreement = pedrank.rank(pool, labels, metric=["knn", "sfda"])
    assert agreement.top_models == {"knn": "rings", "sfda": "linear"}
    assert agreement.kendall_tau[0, 1] == pytest.approx(-1.0)
    assert [r.mean_rank for r in agreement.consensus] == [1.5, 1.5]
    assert agreement.ties == [("rings", "linear")]
    assert agreement.consensus[0].tied_with == ("linear",)
    assert "tied: rings = linear" in agreement.to_string()
    warning = agreement.separation_warning()
    assert "rings (first by knn)" in warning and "linear (first by sfda)" in warning
    three = pedrank.rank(pool, labels, metric=["knn", "sfda", "logme"])
    assert three.models == ["linear", "rings"] and three.ties == []  # 2 of 3 metrics break the tie


def test_several_metrics_with_a_pool_score_options_and_the_bootstrap():
    pool = _clear_pool()
    agreement = pedrank.rank(pool, LABELS, metric=["sfda", "ncti"], shrinkage=0.25, confidence=6, random_state=1)
    assert agreement.tables["sfda"].scores == pedrank.rank(pool, LABELS, metric="sfda", shrinkage=0.25).scores
    assert agreement.tables["ncti"].scores == pedrank.rank(pool, LABELS, metric="ncti").scores
    single = pedrank.rank(pool, LABELS, metric="sfda", shrinkage=0.25, confidence=6, random_state=1)
    assert all(np.array_equal(single.bootstrap_scores[m], agreement.tables["sfda"].bootstrap_scores[m])
               for m in pool)
    with pytest.raises(pedrank.PedrankValueError, match="not an option of any"):
        pedrank.rank(pool, LABELS, metric=["sfda", "logme"], bogus=1)
    with pytest.raises(pedrank.PedrankValueError, match="more than once"):
        pedrank.rank(pool, LABELS, metric=["sfda", "sfda"])


def test_agreement_files_and_reading_them_back(tmp_path):
    agreement = pedrank.rank(_clear_pool(), LABELS, metric=["sfda", "logme"], confidence=5, dataset="toy")
    data = json.loads(agreement.to_json(tmp_path / "a.json"))
    assert data["metrics"] == ["sfda", "logme"] and data["kendall_tau"]["sfda"]["logme"] == pytest.approx(1.0)
    assert [r["model"] for r in data["consensus"]] == agreement.models
    back = read_ranking(tmp_path / "a.json")
    assert isinstance(back, Agreement) and back.models == agreement.models
    assert back.tables["logme"][0].p_best == agreement.tables["logme"][0].p_best
    header = agreement.to_csv().splitlines()[0].split(",")
    assert header[:4] == ["rank", "model", "mean_rank", "tied_with"] and "p_best_sfda" in header
    assert "score" not in header  # pedrank evaluate must not read one metric's scores as the consensus


def test_agreement_of_hand_made_tables_names_every_tie():
    def table(scores):
        return RankTable([RankRecord(m, s, 0.0) for m, s in sorted(scores.items(), key=lambda kv: -kv[1])],
                         metric="x")

    agreement = Agreement({"x": table({"a": 3, "b": 2, "c": 1, "d": 0}), "y": table({"a": 0, "b": 1, "c": 2,
                                                                                     "d": 3})},
                          models=["a", "b", "c", "d"])
    assert agreement.kendall_tau[0, 1] == pytest.approx(-1.0)
    assert {r.mean_rank for r in agreement.consensus} == {2.5}
    assert agreement.ties == [("a", "b", "c", "d")]


# ------------------------------------------------------------------------------------------ command line


@pytest.fixture()
def feature_dir(tmp_path):
    def write(pool, labels=LABELS):
        folder = tmp_path / "feats"
        folder.mkdir(exist_ok=True)
        for name, features in pool.items():
            np.savez(folder / f"{name}.npz", features=features, labels=labels)
        return folder
    return write


def test_cli_confidence_columns_json_csv_and_no_warning_when_separated(feature_dir, tmp_path, capsys):
    folder = feature_dir(_clear_pool())
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["rank", str(folder), "--metric", "sfda", "--confidence", "20", "--seed", "3", "--json",
                 str(out_json), "--csv", str(out_csv), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "P(best)" in captured.out and "rank 5-95%" in captured.out and "top-1 stability" in captured.out
    assert "not separated" not in captured.out + captured.err
    records = json.loads(out_json.read_text())
    expected = pedrank.rank({m: (x, LABELS) for m, x in _clear_pool().items()}, metric="sfda", confidence=20,
                            random_state=3)
    assert [r["p_best"] for r in records] == [r.p_best for r in expected]
    assert [r["score_low"] for r in records] == [r.score_low for r in expected]
    assert "p_best" in out_csv.read_text().splitlines()[0]


def test_cli_warns_when_the_top_two_are_not_separated(feature_dir, capsys):
    folder = feature_dir(_twins_pool())
    assert main(["rank", str(folder), "--metric", "logme", "--confidence", "10", "--no-progress"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "not separated" in line]
    assert len(warning) == 1
    assert warning[0].startswith("pedrank rank: warning: twin-a") and "twin-b" in warning[0]
    assert warning[0].endswith("not separated; fine-tune both")
    assert main(["rank", str(folder), "--metric", "logme", "--confidence", "10", "--separated", "0.4",
                 "--no-progress"]) == 0
    assert "not separated" not in capsys.readouterr().err


def test_cli_several_metrics_and_the_disagreement_warning(feature_dir, tmp_path, capsys):
    pool, labels = _rings_and_linear()
    folder = feature_dir(pool, labels)
    assert main(["rank", str(folder), "--metric", "knn,sfda", "--json", str(tmp_path / "a.json"),
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "Kendall tau" in captured.out and "tied: " in captured.out
    assert "rings (first by knn)" in captured.err and "not separated; fine-tune both" in captured.err
    assert json.loads((tmp_path / "a.json").read_text())["metrics"] == ["knn", "sfda"]
    assert main(["rank", str(folder), "--metric", "sfda,logme", "--option", "shrinkage=0.2", "--no-progress"]) == 0
    assert "not separated" not in capsys.readouterr().err
    assert main(["rank", str(folder), "--metric", "sfda,logme", "--option", "bogus=1", "--no-progress"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_cli_seed_and_random_state_option_must_agree(feature_dir, capsys):
    folder = feature_dir(_clear_pool())
    assert main(["rank", str(folder), "--metric", "pactran", "--seed", "1", "--option", "random_state=2",
                 "--no-progress"]) == 2
    assert "--seed 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the plot


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_ranking_writes_a_png_from_the_cli(feature_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    folder = feature_dir(_clear_pool())
    scores = tmp_path / "agreement.json"
    assert main(["rank", str(folder), "--metric", "sfda,logme", "--confidence", "8", "--json", str(scores),
                 "--no-progress"]) == 0
    png = tmp_path / "ranking.png"
    assert main(["plot", "ranking", str(scores), "-o", str(png)]) == 0
    assert "2 metric(s), 3 models, intervals from 8 resamples" in capsys.readouterr().out
    width, height = _png_size(png)
    assert width > 500 and height > 200


def test_plot_ranking_draws_each_interval_and_the_tau_matrix(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from pedrank.frontends.plot import plot_ranking

    seen = []
    original = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kwargs):
        seen.extend((ax.get_xlabel(), ax.get_ylabel(), ax.get_title(), len(ax.lines)) for ax in self.axes
                    if ax.get_visible())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    table = pedrank.rank(_clear_pool(), LABELS, metric="logme", confidence=6)
    drawn = plot_ranking(table, tmp_path / "one.png")
    assert drawn["kendall_tau"] is None and drawn["models"] == table.models
    x_label, y_label, title, lines = seen[0]
    assert x_label.startswith("logme score") and "5th-95th" in x_label and y_label == "model (best first)"
    assert lines == 2 * len(table)  # an interval bar and a dot per model
    assert "top-1 stable" in title
    seen.clear()
    agreement = pedrank.rank(_clear_pool(), LABELS, metric=["sfda", "logme"])
    drawn = plot_ranking(agreement, tmp_path / "two.png")
    assert drawn["kendall_tau"].shape == (2, 2)
    assert "Kendall tau between rankings" in [entry[2] for entry in seen]
    assert [entry[3] for entry in seen][:2] == [3, 3]  # no bootstrap: dots only


def test_a_process_pool_gives_the_serial_agreement():
    from concurrent.futures import ProcessPoolExecutor

    pool = _clear_pool()
    serial = pedrank.rank(pool, LABELS, metric=["sfda", "gbc"], ped=True, confidence=5)
    with ProcessPoolExecutor(2) as executor:
        parallel = pedrank.rank(pool, LABELS, metric=["sfda", "gbc"], ped=True, confidence=5, executor=executor)
    for metric in serial.metrics:
        assert _without_seconds(parallel.tables[metric]) == _without_seconds(serial.tables[metric])


def test_rank_refuses_ped_on_a_source_models_predictions():
    probabilities = np.full((20, 3), 1 / 3) + np.linspace(0, 0.1, 20)[:, None] * np.array([1, -1, 0])
    labels = np.arange(20) % 2
    for metric in ("leep", ["leep", "nce"]):
        with pytest.raises(pedrank.PedrankValueError, match="ped: leep scores the source model's predictions"):
            pedrank.rank({"m": probabilities}, labels, metric=metric, ped=True)
    assert pedrank.Agreement.__name__ == "Agreement" and "Agreement" in pedrank.__all__
