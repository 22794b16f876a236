"""One configuration per mean: the leaderboard never pools trials of different settings (the store's
``setting``: a trial's identity without its seed); it shows the latest setting per (group, model) by
default and every setting, labelled by what differs, with ``configs="all"``."""

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from imputebench import leaderboard as lb
from imputebench.ratio_curves import ratio_curves

SHA = "ab12cd34ef56" * 5 + "0123"  # a data file's sha256 (64 hex digits)
CONFIG = {"lr": 0.001, "max_epochs": 5, "patience": 100}


def identity(model: str, seed: int, config: dict, ratio: float = 0.5, data: dict | None = None) -> dict:
    """A trial's identity as the store writes it (JSON keys in this order)."""
    return {"model": model, "config": config, "dataset": "glass",
            "data": data or {"sha256": SHA, "status": "verified"}, "mechanism": {"name": "mcar"},
            "ratio": ratio, "protocol": {"name": "vsae", "test_fraction": 0.2}, "seed": seed, "numerics": 1}


def setting(ident: dict) -> str:
    """The store's setting: a 20-hex-digit hash of the identity without its seed."""
    without_seed = {key: value for key, value in ident.items() if key != "seed"}
    return hashlib.sha256(json.dumps(without_seed, sort_keys=True).encode()).hexdigest()[:20]


def trial(model: str, seed: int, score: float, finished: str, ratio: float = 0.5, status: str = "ok",
          data: dict | None = None, **config) -> dict:
    """One trial row: ``config`` overrides :data:`CONFIG`; ``finished`` is the hour of ``finished_at``."""
    ident = identity(model, seed, {**CONFIG, **config}, ratio, data)
    return {"config_hash": f"{setting(ident)}-{seed}", "protocol": "vsae", "dataset": "glass", "mechanism": "mcar",
            "ratio": ratio, "model": model, "seed": seed, "status": status, "reason": None, "wall_time_s": 1.0,
            "config": json.dumps(ident["config"]), "finished_at": f"2025-03-01T{finished}:00:00+00:00", "attempt": 1,
            "metric.nrmse": score if status == "ok" else np.nan, "setting": setting(ident), "identity": json.dumps(ident)}


def budgets() -> pd.DataFrame:
    """vae for 5 then, later, 6 epochs, two seeds each; mean once, between them."""
    return pd.DataFrame([
        trial("vae", 0, 0.50, "01", max_epochs=5), trial("vae", 1, 0.70, "01", max_epochs=5),
        trial("mean", 0, 0.90, "02"), trial("mean", 1, 1.10, "02"),
        trial("vae", 0, 0.30, "03", max_epochs=6), trial("vae", 1, 0.40, "03", max_epochs=6),
    ])


def attempts_of(rows: pd.DataFrame) -> pd.DataFrame:
    """The attempts of ``rows``: each trial's single attempt (the store's attempt columns)."""
    columns = ["config_hash", "attempt", "model", "dataset", "mechanism", "ratio", "seed", "protocol", "status",
               "reason", "wall_time_s", "finished_at", "setting", "identity"]
    return rows[columns].assign(hardware="cpu")


def table_rows(text: str, header: str) -> dict[str, list[str]]:
    """The Markdown table under ``header``: first cell (label, or 'model' for the header) -> the other cells."""
    lines = text.split(header, 1)[1].split("\n\n")[1].splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if not line.startswith("|:")]
    return {row[0]: row[1:] for row in cells}


GLASS = "### protocol `vsae`, mechanism `mcar`, missing ratio 0.5"


def test_by_default_only_the_latest_configuration_counts():
    summary = lb.summarise(budgets(), attempts_of(budgets()))
    vae = summary[summary["model"] == "vae"]
    assert len(vae) == 1 and vae["n_seeds"].item() == 2
    assert vae["mean"].item() == pytest.approx(0.35) and vae["std"].item() == pytest.approx(np.std([0.3, 0.4], ddof=1))
    assert vae["setting"].item() == budgets()["setting"].iloc[-1] and vae["label"].item() == "vae"
    assert summary.set_index("model")["older_trials"].to_dict() == {"vae": 2, "mean": 0}
    text = lb.to_markdown(summary)
    assert table_rows(text, GLASS)["vae"][0] == "**0.350 ± 0.071**"
    assert "2 trials of older configurations not shown" in text and "`--config all` shows them" in text
    assert "0.600" not in text  # the pooled mean of all four vae trials


def test_no_note_when_nothing_is_hidden():
    rows = budgets()[lambda frame: frame["finished_at"] >= "2025-03-01T02"]
    text = lb.to_markdown(lb.summarise(rows))
    assert "older configurations" not in text and "several configurations" not in text


def test_all_configurations_each_have_their_own_labelled_line():
    summary = lb.summarise(budgets(), attempts_of(budgets()), configs="all")
    lines = summary.set_index("label")
    assert sorted(lines.index) == ["mean", "vae (max_epochs=5)", "vae (max_epochs=6)"]
    assert lines["model"].to_dict() == {"vae (max_epochs=6)": "vae", "vae (max_epochs=5)": "vae", "mean": "mean"}
    assert lines["n_seeds"].to_dict() == {"vae (max_epochs=6)": 2, "vae (max_epochs=5)": 2, "mean": 2}
    assert lines.loc["vae (max_epochs=5)", "mean"] == pytest.approx(0.6)
    assert lines["rank"].to_dict() == {"vae (max_epochs=6)": 1, "vae (max_epochs=5)": 2, "mean": 3}
    assert (summary["older_trials"] == 0).all()
    text = lb.to_markdown(summary)
    table = table_rows(text, GLASS)
    assert list(table)[1:] == ["vae (max_epochs=6)", "vae (max_epochs=5)", "mean"]
    assert table["vae (max_epochs=5)"][:3] == ["0.600 ± 0.141", "2", "2"]  # mean rank, seeds
    assert "older configurations" not in text and "one line per configuration" in text
    back = pd.read_csv(io.StringIO(lb.to_csv(summary))).set_index("label")
    assert back.loc["vae (max_epochs=5)", "n_seeds"] == 2 and back.loc["vae (max_epochs=6)", "n_seeds"] == 2
    assert back.loc["vae (max_epochs=5)", "model"] == "vae" and back.loc["mean", "setting"] == budgets()["setting"][2]


def test_several_differing_fields_are_sorted_by_key_and_hashes_shortened():
    rows = pd.DataFrame([trial("vae", 0, 0.5, "01", max_epochs=5), trial("vae", 0, 0.4, "02", max_epochs=6, lr=0.01),
                         trial("vae", 0, 0.3, "03", data={"sha256": "f" * 64, "status": "modified"})])
    labels = set(lb.summarise(rows, configs="all")["label"])
    assert labels == {"vae (data.sha256=ab12cd34, data.status=verified, lr=0.001, max_epochs=5)",
                      "vae (data.sha256=ab12cd34, data.status=verified, lr=0.01, max_epochs=6)",
                      "vae (data.sha256=ffffffff, data.status=modified, lr=0.001, max_epochs=5)"}


def test_rows_whose_data_is_unknown_are_never_merged_with_verified_ones():
    unknown = {"sha256": None, "status": "unknown"}  # rows migrated from an old store
    rows = pd.DataFrame([trial("vae", 0, 0.5, "01", data=unknown), trial("vae", 1, 0.7, "01", data=unknown),
                         trial("vae", 0, 0.3, "02"), trial("vae", 1, 0.4, "02")])
    lines = lb.summarise(rows, configs="all").set_index("label")
    assert lines["mean"].to_dict() == pytest.approx({"vae (data.sha256=null, data.status=unknown)": 0.6,
                                                     "vae (data.sha256=ab12cd34, data.status=verified)": 0.35})
    assert (lines["n_seeds"] == 2).all()
    latest = lb.summarise(rows)
    assert latest["label"].tolist() == ["vae"] and latest["mean"].item() == pytest.approx(0.35)


def test_failures_count_per_configuration():
    rows = budgets()
    attempts = attempts_of(rows)
    failed = attempts[attempts["config_hash"] == rows["config_hash"][0]].assign(attempt=2, status="timeout")
    crashed = trial("vae", 2, np.nan, "01", status="failed", max_epochs=5)
    rows = pd.concat([rows, pd.DataFrame([crashed])], ignore_index=True)
    attempts = pd.concat([attempts, failed, attempts_of(pd.DataFrame([crashed]))], ignore_index=True)
    lines = lb.summarise(rows, attempts, configs="all").set_index("label")
    assert lines.loc["vae (max_epochs=5)", ["status.timeout", "status.failed", "failures"]].tolist() == [1, 1, 2]
    assert lines.loc["vae (max_epochs=6)", "failures"] == 0 and lines.loc["vae (max_epochs=5)", "n_seeds"] == 2
    latest = lb.summarise(rows, attempts)
    assert latest["failures"].sum() == 0 and latest.set_index("model").loc["vae", "older_trials"] == 3
    assert "attempts whose status is not ok: none here" in lb.to_markdown(latest)


def test_the_latest_configuration_is_the_last_run_whatever_its_outcome():
    rows = pd.concat([budgets(), pd.DataFrame([trial("vae", 0, np.nan, "04", status="failed", max_epochs=7)])])
    vae = lb.summarise(rows, attempts_of(rows)).query("model == 'vae'")
    assert len(vae) == 1 and vae["n_seeds"].item() == 0 and vae["failures"].item() == 1
    assert vae["older_trials"].item() == 4


def test_an_attempt_that_finished_later_makes_its_configuration_the_latest():
    rows = budgets()
    attempts = attempts_of(rows)
    retried = attempts[attempts["config_hash"] == rows["config_hash"][0]]  # the 5-epoch trial of seed 0, kept ok
    attempts = pd.concat([attempts, retried.assign(attempt=2, status="timeout", finished_at="2025-03-01T05:00:00+00:00")])
    vae = lb.summarise(rows, attempts).query("model == 'vae'")
    assert vae["mean"].item() == pytest.approx(0.6) and vae["failures"].item() == 1


def test_without_times_the_configuration_written_last_is_the_latest():
    rows = budgets().assign(finished_at=None)
    vae = lb.summarise(rows, attempts_of(rows)).query("model == 'vae'")
    assert vae["mean"].item() == pytest.approx(0.35)
    vae = lb.summarise(rows.iloc[::-1], attempts_of(rows)).query("model == 'vae'")
    assert vae["mean"].item() == pytest.approx(0.6)


def test_the_test_against_the_best_pairs_only_seeds_of_one_configuration():
    records = []
    for seed in range(6):
        records += [trial("mean", seed, 0.50 + 0.01 * seed, "01"),
                    trial("vae", seed, 0.60 + 0.02 * seed, "01", max_epochs=5),
                    trial("vae", seed, 0.40 + 0.03 * seed, "02", max_epochs=6)]
    lines = lb.summarise(pd.DataFrame(records), configs="all").set_index("label")
    assert lines.loc["vae (max_epochs=6)", "rank"] == 1 and np.isnan(lines.loc["vae (max_epochs=6)", "p_vs_best"])
    assert (lines["n_pairs"] == 6).all()  # 6 seeds per configuration, not 12 per model
    best, five = 0.40 + 0.03 * np.arange(6), 0.60 + 0.02 * np.arange(6)
    assert lines.loc["vae (max_epochs=5)", "p_vs_best"] == pytest.approx(lb.paired_p_value(best, five))
    assert lines.loc["mean", "p_vs_best"] == pytest.approx(lb.paired_p_value(best, 0.50 + 0.01 * np.arange(6)))


def ratios() -> pd.DataFrame:
    """mean once and vae for 5 then 6 epochs at ratios 0.2 and 0.5, two seeds each."""
    records = []
    for ratio, shift in ((0.2, 0.0), (0.5, 0.1)):
        for seed in range(2):
            records += [trial("mean", seed, 0.9 + shift, "01", ratio=ratio),
                        trial("vae", seed, 0.8 + shift + 0.1 * seed, "02", ratio=ratio, max_epochs=5),
                        trial("vae", seed, 0.5 + shift + 0.1 * seed, "03", ratio=ratio, max_epochs=6)]
    return pd.DataFrame(records)


def test_by_tables_and_overall_ranks_show_each_configuration():
    summary = lb.summarise(ratios(), configs="all")
    text = lb.to_markdown(summary, by=["ratio"])
    table = table_rows(text, "### protocol `vsae`, dataset `glass`, mechanism `mcar`: NRMSE by ratio")
    assert table["model"] == ["0.2", "0.5", "mean rank", "seeds", "failures"]
    assert table["vae (max_epochs=6)"] == ["**0.550 ± 0.071**", "**0.650 ± 0.071**", "1", "2", "0"]
    assert table["vae (max_epochs=5)"][:2] == ["0.850 ± 0.071", "0.950 ± 0.071"]
    wide = pd.read_csv(io.StringIO(lb.to_csv(summary, by=["ratio"]))).set_index("model")
    assert wide.loc["vae (max_epochs=5)", "0.5 mean"] == pytest.approx(0.95) and len(wide) == 3
    overall = lb.overall_ranks(summary).set_index("label")
    assert overall["mean_rank"].to_dict() == {"vae (max_epochs=6)": 1.0, "vae (max_epochs=5)": 2.0, "mean": 3.0}
    assert (overall["groups"] == 2).all() and overall.loc["vae (max_epochs=5)", "model"] == "vae"
    assert list(table_rows(text, "### overall, protocol `vsae`"))[1:] == ["vae (max_epochs=6)", "vae (max_epochs=5)", "mean"]


def test_latest_is_chosen_per_group():
    rows = ratios()[lambda frame: ~((frame["ratio"] == 0.2) & frame["config"].str.contains('"max_epochs": 6'))]
    lines = lb.summarise(rows).set_index(["ratio", "model"])
    assert lines["mean"].to_dict() == pytest.approx({(0.2, "vae"): 0.85, (0.2, "mean"): 0.9,
                                                     (0.5, "vae"): 0.65, (0.5, "mean"): 1.0})
    assert lines["older_trials"].to_dict() == {(0.2, "vae"): 0, (0.2, "mean"): 0, (0.5, "vae"): 2, (0.5, "mean"): 0}


def test_ratio_curves_draw_one_line_per_label():
    figures = ratio_curves(lb.summarise(ratios(), configs="all"))
    axis = figures["ratio_glass_nrmse_vsae_mcar"].axes[0]
    assert sorted(axis.get_legend_handles_labels()[1]) == ["mean", "vae (max_epochs=5)", "vae (max_epochs=6)"]
    axis = ratio_curves(lb.summarise(ratios()))["ratio_glass_nrmse_vsae_mcar"].axes[0]
    assert sorted(axis.get_legend_handles_labels()[1]) == ["mean", "vae"]


def test_complete_data_models_keep_their_mark_under_a_label():
    rows = pd.DataFrame([trial("cvae_data", 0, 0.5, "01", max_epochs=5), trial("cvae_data", 0, 0.4, "02", max_epochs=6),
                         trial("mean", 0, 0.9, "01")])
    text = lb.to_markdown(lb.summarise(rows, configs="all"))
    assert set(table_rows(text, GLASS)) == {"model", "cvae_data (max_epochs=5) †", "cvae_data (max_epochs=6) †", "mean"}


def test_settings_without_an_identity_are_told_apart_by_their_hash():
    rows = budgets().drop(columns="identity")
    labels = set(lb.summarise(rows, configs="all")["label"])
    five, six = budgets()["setting"][0][:8], budgets()["setting"][4][:8]
    assert labels == {"mean", f"vae (setting={five})", f"vae (setting={six})"}


def test_unknown_configs_are_refused():
    with pytest.raises(ValueError, match="unknown configs 'newest'; choose from latest, all"):
        lb.summarise(budgets(), configs="newest")
