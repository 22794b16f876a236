"""``imputebench reproduce``: presets, the verdict rule, the report, and the paper values typed into presets."""

from __future__ import annotations

import csv
import math
import shutil
import sqlite3

import pandas as pd
import pytest
import yaml
from paper_tables import read_table
from typer.testing import CliRunner

from imputebench.cli import _result_line, app
from imputebench.reproduce.preset import PaperValue, PresetError, load_preset, preset_names
from imputebench.reproduce.verdict import NOT_COMPARABLE, NOT_REPRODUCED, REPRODUCED, Ours, judge

runner = CliRunner()

TINY = """
paper: A test paper
paper_file: none.txt
table: Table 9
caption: "NRMSE of imputations."
protocol: vaeac
ratio: 0.5
paper_runs: 5
delta: 0.001
columns:
  Iris: {dataset: iris, metric: nrmse}
  Wine: {dataset: wine, metric: nrmse, ratio: 0.3}
  SVHN: {unavailable: "SVHN is not in the offline mirror"}
rows:
  Mean: {model: mean}
  VAE: {model: vae, config: {hidden_width: 8}}
  Other: {unavailable: "no such model here"}
reference_models: [mice]
budgets:
  paper: {seeds: 3, estimated_cpu_hours: 0.01, note: "test"}
  reduced: {seeds: 2, max_epochs: 2, estimated_cpu_hours: 0.01, note: "test"}
cells:
  Mean: {Iris: "1.00 ± 0.02", Wine: "0.99 ± Δ", SVHN: "0.5 ± 0.1"}
  VAE: {Iris: "0.2 ± 0.1"}
  Other: {Iris: "0.3 ± 0.1"}
"""


# --- the verdict rule (results/reproduce/README.md) -------------------------------------------------------------
def paper(text: str, delta: float | None = None) -> PaperValue:
    return PaperValue.parse(text, delta)


def test_paper_values_are_read_as_printed():
    value = paper("0.964 ± 0.007")
    assert (value.value, value.error, value.decimals, value.is_delta) == (0.964, 0.007, 3, False)
    assert value.rounding == pytest.approx(0.0005)
    delta = paper("0.45 ± Δ", delta=0.001)
    assert (delta.value, delta.error, delta.decimals, delta.is_delta) == (0.45, 0.001, 2, True)
    with pytest.raises(ValueError, match="no delta"):
        paper("0.45 ± Δ")
    alone = paper("0.4143")  # MVAE's tables print no spread: ours stands in for it
    assert (alone.value, alone.error, alone.decimals, alone.is_delta) == (0.4143, 0.0, 4, False)
    with pytest.raises(ValueError, match="not 'value ± spread'"):
        paper("0.45 +- 0.01")


def test_a_value_printed_without_spread_is_judged_with_ours():
    unspread = paper("0.90")
    assert judge(unspread, Ours(0.93, 0.02, 3), 1, True).label == REPRODUCED  # 0.03 <= 2 sqrt(0.02^2 + 0.02^2 / 3)
    assert judge(unspread, Ours(0.96, 0.02, 3), 1, True).label == NOT_REPRODUCED


def test_a_difference_within_two_standard_errors_is_reproduced():
    # e = 0.01 over 5 runs, s = 0.01 over 3 seeds: SE = sqrt(0.01^2 / 5 + 0.01^2 / 3) = 0.0073, tolerance 0.0146
    tolerance = 2 * math.sqrt(0.01**2 / 5 + 0.01**2 / 3)
    inside = judge(paper("0.850 ± 0.010"), Ours(0.850 + 0.99 * tolerance, 0.01, 3), 5, higher_is_better=False)
    outside = judge(paper("0.850 ± 0.010"), Ours(0.850 + 1.01 * tolerance, 0.01, 3), 5, higher_is_better=False)
    assert inside.label == REPRODUCED and inside.tolerance == pytest.approx(tolerance)
    assert outside.label == NOT_REPRODUCED and "worse" in outside.reason


def test_an_implausibly_small_published_spread_is_raised_to_ours():
    # Δ <= 0.001 against our seed std 0.02: the paper's spread is taken as 0.02
    verdict = judge(paper("0.40 ± Δ", delta=0.001), Ours(0.43, 0.02, 3), 3, higher_is_better=False)
    assert verdict.tolerance == pytest.approx(2 * math.sqrt(0.02**2 / 3 + 0.02**2 / 3))
    assert verdict.label == REPRODUCED and "raised to our seed std" in verdict.reason


def test_the_tolerance_is_never_finer_than_the_printed_precision():
    verdict = judge(paper("0.4 ± 0.0"), Ours(0.44, 0.0, 3), 3, higher_is_better=False)
    assert verdict.tolerance == pytest.approx(0.05) and verdict.label == REPRODUCED
    assert judge(paper("0.4 ± 0.0"), Ours(0.46, 0.0, 3), 3, False).label == NOT_REPRODUCED


def test_better_and_worse_follow_the_tables_sense():
    lower = judge(paper("0.50 ± 0.01"), Ours(0.40, 0.01, 3), 3, higher_is_better=False)
    higher = judge(paper("0.50 ± 0.01"), Ours(0.40, 0.01, 3), 3, higher_is_better=True)
    assert "ours better" in lower.reason and "ours worse" in higher.reason


def test_fewer_than_two_seeds_are_not_comparable():
    assert judge(paper("0.5 ± 0.1"), None, 3, False).label == NOT_COMPARABLE
    assert judge(paper("0.5 ± 0.1"), Ours(0.5, float("nan"), 1), 3, False).label == NOT_COMPARABLE


# --- presets ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_names_registered_things(name):
    preset = load_preset(name)
    preset.check_names()
    assert preset.paper_values and preset.blocks()
    for row, column in preset.paper_values:
        assert row in preset.rows and column in preset.columns


@pytest.mark.parametrize("name", preset_names())
def test_the_paper_values_typed_into_a_preset_are_the_papers(name, papers_dir):
    """Each preset's cells, against the table read from the paper's text by tests/paper_tables.py."""
    preset = load_preset(name)
    typed = {(r, c): v.text for (r, c), v in preset.paper_values.items()}
    if preset.transposed:  # the paper prints our rows as its columns
        table = read_table(papers_dir / preset.paper_file, f"{preset.table}:", list(preset.rows))
        printed = {(r, c): table[c][r] for (r, c) in typed}
    else:
        table = read_table(papers_dir / preset.paper_file, f"{preset.table}:", list(preset.columns))
        printed = {(r, c): table[r][c] for (r, c) in typed}
    assert typed == printed
    # and the table's every printed cell of our rows and columns was typed in
    assert len(typed) == sum(1 for r in preset.rows for c in preset.columns
                             if (table.get(c, {}).get(r) if preset.transposed else table.get(r, {}).get(c)))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("Wine: {dataset: wine, metric: nrmse, ratio: 0.3}", "Wine: {dataset: wine, ratio: 0.3}", r"key columns.Wine.*name the metric"),
    ('Iris: "1.00 ± 0.02"', 'Iris: "1.00 +- 0.02"', r"cells.Mean.Iris"),
    ("seeds: 2,", "seeds: 1,", r"budgets.reduced.seeds"),
    ("metric: nrmse, ratio: 0.3}", "metric: nrmse, ratio: 0.0}", r"columns.Wine: missing ratio .*only for unpaired"),
    ("metric: nrmse, ratio: 0.3}", "metric: nrmse, ratio: 0.0, mechanism: unpaired}",
     r"columns.Wine: ratio 0 hides nothing, so nrmse has nothing to score"),
])
def test_a_bad_preset_names_its_file_and_key(tmp_path, old, new, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace(old, new))
    with pytest.raises(PresetError, match=r"bad.yaml: .*" + message):
        load_preset(bad)


# --- the command ----------------------------------------------------------------------------------------------------
def test_list_shows_every_preset():
    result = runner.invoke(app, ["reproduce", "--list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in preset_names():
        assert name in result.output


@pytest.mark.parametrize("args, message", [
    (["no-such-preset"], "unknown preset"),
    (["vaeac-t1", "--budget", "fast"], "--budget 'fast'"),
    (["tiny-bad-model"], "unknown model"),
])
def test_bad_input_exits_2_before_any_trial_and_leaves_the_store(tmp_path, args, message):
    store = tmp_path / "s.sqlite"
    (tmp_path / "tiny-bad-model.yaml").write_text(TINY.replace("{model: mean}", "{model: nope}"))
    args = [str(tmp_path / f"{args[0]}.yaml") if args[0] == "tiny-bad-model" else args[0], *args[1:]]
    result = runner.invoke(app, ["reproduce", *args, "--store", str(store), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not store.exists() and not (tmp_path / "out").exists()


def test_a_preset_runs_through_the_store_and_writes_every_cell(tmp_path):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(TINY)
    store, out = tmp_path / "s.sqlite", tmp_path / "out"
    args = ["reproduce", str(preset), "--store", str(store), "--out", str(out)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    with sqlite3.connect(store) as db:  # 3 models x 2 datasets x 2 seeds, each its own trial
        assert db.execute("SELECT COUNT(*) FROM trials WHERE status = 'ok'").fetchone()[0] == 12
    with (out / "tiny.csv").open() as handle:
        cells = {(r["row"], r["column"]): r for r in csv.DictReader(handle)}
    # the paper's 5 cells get a verdict; SVHN and the missing model are not comparable, with their reasons
    judged = {k: v for k, v in cells.items() if v["verdict"]}
    assert set(judged) == {("Mean", "Iris"), ("Mean", "Wine"), ("Mean", "SVHN"), ("VAE", "Iris"), ("Other", "Iris")}
    assert judged[("Mean", "SVHN")]["verdict"] == NOT_COMPARABLE and "SVHN" in judged[("Mean", "SVHN")]["reason"]
    assert judged[("Other", "Iris")]["reason"] == "no such model here"
    # mean imputation's NRMSE is about 1 on standardised features: "1.00 ± 0.02" is met, VAE's "0.2" is not
    assert judged[("Mean", "Iris")]["verdict"] == REPRODUCED
    assert judged[("VAE", "Iris")]["verdict"] == NOT_REPRODUCED and "worse" in judged[("VAE", "Iris")]["reason"]
    assert cells[("mice (ours)", "Wine")]["ratio"] == "0.3" and int(cells[("mice (ours)", "Wine")]["ours_n"]) == 2
    md = (out / "tiny.md").read_text()
    assert "**Verdicts**: 2 reproduced, 1 not reproduced, 2 not comparable (of 5 cells)" in md
    assert "`reduced`: 2 seeds, at most 2 epochs" in md
    assert _result_line(out / "tiny.md") == "reduced: 2 reproduced, 1 not reproduced, 2 not comparable (of 5 cells)"
    assert _result_line(tmp_path / "absent.md") == "–"
    # a second run resumes: nothing trains again, and the cells are the same
    shutil.copy(out / "tiny.csv", tmp_path / "first.csv")
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 12
    assert (out / "tiny.csv").read_text() == (tmp_path / "first.csv").read_text()


def test_a_row_config_reaches_the_trials_and_a_bad_one_exits_2(tmp_path):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(TINY.replace("hidden_width: 8", "hidden_width: -3"))
    result = runner.invoke(app, ["reproduce", str(preset), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "preset tiny, rows VAE: config" in result.output
    assert not (tmp_path / "s.sqlite").exists()



def test_a_prediction_column_makes_its_trials_ask_for_prediction_and_an_imputation_column_does_not():
    prediction, imputation = load_preset("vaeac-t2"), load_preset("vaeac-t7")
    assert prediction.higher_is_better and {b.evaluation for b in prediction.blocks()} == {("downstream",)}
    assert {b.evaluation for b in imputation.blocks()} == {()}


def test_vaeac_tables_1_and_2_share_every_trial():
    def plan(preset):
        sweeps = {(b.model, yaml.safe_dump(b.config), b.mechanism, b.ratio, tuple(sorted(b.datasets)), b.evaluation)
                  for b in preset.blocks()}
        return sweeps, preset.protocol, {name: (b.seeds, b.max_epochs, b.patience, b.model_epochs)
                                         for name, b in preset.budgets.items()}

    table1, table2 = load_preset("vaeac-t1"), load_preset("vaeac-t2")
    assert table1.evaluation == ["downstream"] and plan(table1) == plan(table2)


def test_weak_supervision_columns_ask_for_label_accuracy_at_their_own_unpaired_share():
    preset = load_preset("mvae-t8")
    assert {b.evaluation for b in preset.blocks()} == {("label",)}
    assert {b.mechanism for b in preset.blocks()} == {"unpaired"}
    assert sorted({b.ratio for b in preset.blocks()}) == [0.0, 0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999]  # 0: all paired
    reduced = preset.budgets["reduced"]
    assert reduced.epochs_for("mvae") == (5, 5) and reduced.epochs_for("supervised_nn") == (100, 100)


def test_a_column_whose_metric_cannot_be_compared_shows_ours_without_a_verdict():
    from imputebench.reproduce.report import cell_results

    preset = load_preset("vsae-t3")  # NRMSE columns: the paper's metric is undefined (vsae_metric.md)
    frame = pd.DataFrame({"config_hash": ["a", "b"], "status": ["ok", "ok"], "setting": ["s", "s"],
                          "metric.nrmse": [0.90, 0.94]})
    cells = cell_results(preset, frame, {("VSAE", "Yeast"): {"a", "b"}})
    yeast = next(c for c in cells if (c.row, c.column) == ("VSAE", "Yeast"))
    assert yeast.verdict.label == NOT_COMPARABLE and "vsae_metric.md" in yeast.verdict.reason
    assert yeast.ours.n == 2 and yeast.ours.mean == pytest.approx(0.92)
