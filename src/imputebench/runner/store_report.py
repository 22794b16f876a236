"""What ``imputebench store show`` reports of a store: trials counted by status, model, dataset and
configuration, as plain frames (the command line draws them as tables).

A configuration is a *setting*: a trial's identity without its seed (:mod:`imputebench.runner.trials`), the
unit that ``store forget --config`` removes and that the leaderboard never pools across. Each is shown with
the leaderboard's label: the model, and the identity fields in which it differs from the other settings of
its (protocol, dataset, mechanism, ratio) cell, e.g. ``vae (max_epochs=5)``.
"""

from __future__ import annotations

import pandas as pd

from imputebench.leaderboard import CELL, shown_settings

#: the digits of a setting's hash shown (``store forget --config`` takes any prefix of 6 or more)
SETTING_DIGITS = 12


def status_counts(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Trials per ``by`` combination of the store's rows ``frame``: columns ``ok`` and ``not ok``."""
    ok = (frame["status"] == "ok").groupby([frame[c] for c in by], dropna=False).agg(["sum", "size"])
    return pd.DataFrame({"ok": ok["sum"], "not ok": ok["size"] - ok["sum"]})


def configurations(frame: pd.DataFrame, attempts: pd.DataFrame | None = None) -> pd.DataFrame:
    """One line per setting of the store's rows ``frame`` (``attempts`` lend the labels the settings that only
    failed): ``setting`` (shortened), ``label``, dataset, mechanism, ratio, ``data`` (verified, modified,
    unknown...), ``numerics``, ``ok``, ``not ok`` and ``last run`` (UTC, to the minute); the latest first."""
    labels = shown_settings(frame, attempts, "all")[[*CELL, "setting", "label"]]
    facts = frame.groupby([*CELL, "setting"], dropna=False).agg(
        data=("data_status", "first"), numerics=("numerics", "first"), last=("finished_at", "max"))
    lines = labels.merge(facts.reset_index(), on=[*CELL, "setting"]).join(status_counts(frame, ["setting"]), on="setting")
    lines = lines.sort_values(["last", "setting"], ascending=[False, True], na_position="last")
    last_run = pd.to_datetime(lines["last"], utc=True, errors="coerce", format="ISO8601").dt.strftime("%Y-%m-%d %H:%M")
    numerics = lines["numerics"].map(lambda n: "–" if pd.isna(n) else str(int(n)))
    return pd.DataFrame({
        "setting": lines["setting"].str[:SETTING_DIGITS], "label": lines["label"], "dataset": lines["dataset"],
        "mechanism": lines["mechanism"], "ratio": lines["ratio"], "data": lines["data"], "numerics": numerics,
        "ok": lines["ok"], "not ok": lines["not ok"], "last run": last_run.fillna("–"),
    }).reset_index(drop=True)
