"""Results store: one SQLite row per trial, committed as soon as the trial ends.

Every write is its own transaction (WAL journal), so a crash or Ctrl-C in the
middle of a sweep loses at most the trial that was running; a rerun skips the
trials already stored with status ``ok``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from imputebench.runner.trials import Trial

COLUMNS = (
    "config_hash", "model", "dataset", "mechanism", "ratio", "seed", "protocol", "status", "reason",
    "metrics", "wall_time_s", "peak_rss_mb", "n_params", "config", "mask_hash", "versions",
    "git_commit", "hardware", "finished_at",
)

BUSY_TIMEOUT_S = 60.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS trials (
    config_hash TEXT PRIMARY KEY, model TEXT NOT NULL, dataset TEXT NOT NULL, mechanism TEXT NOT NULL,
    ratio REAL NOT NULL, seed INTEGER NOT NULL, protocol TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'diverged', 'failed')), reason TEXT,
    metrics TEXT NOT NULL, wall_time_s REAL, peak_rss_mb REAL, n_params INTEGER, config TEXT,
    mask_hash TEXT, versions TEXT, git_commit TEXT, hardware TEXT, finished_at TEXT
)
"""


@dataclass
class ResultRow:
    """A trial's outcome; its row's primary key is ``trial.key`` (stored as ``config_hash``)."""

    trial: Trial
    status: str
    reason: str | None
    metrics: dict = field(default_factory=dict)
    wall_time_s: float | None = None
    peak_rss_mb: float | None = None
    n_params: int | None = None
    config: dict = field(default_factory=dict)
    mask_hash: str | None = None
    versions: dict = field(default_factory=dict)
    git_commit: str | None = None
    hardware: str | None = None
    finished_at: str | None = None
    #: the deep model's per-epoch losses and validation scores (for W&B; not a store column)
    history: list[dict] = field(default_factory=list)


def row_config(row: pd.Series) -> dict:
    """The model configuration of a row of :meth:`ResultStore.frame` (stored as JSON; ``{}`` if absent)."""
    return json.loads(row["config"]) if isinstance(row["config"], str) else {}


class StoreError(RuntimeError):
    """The store file cannot be opened or is not an imputebench store."""


class ResultStore:
    """SQLite-backed result rows (``results/imputebench.sqlite`` by default)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Other sweeps may write to the same file: wait up to a minute for their one-row transactions.
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
            columns = tuple(name for _, name, *_ in self._db.execute("PRAGMA table_info(trials)"))
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a usable results store: {err}") from None
        if columns != COLUMNS:
            self._db.close()
            raise StoreError(
                f"{self.path} was written by another version of imputebench (columns {', '.join(columns)}); "
                "it is left untouched: pass a new --store"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished_keys(self) -> set[str]:
        return {k for (k,) in self._db.execute("SELECT config_hash FROM trials WHERE status = 'ok'")}

    def write(self, row: ResultRow) -> None:
        trial = row.trial
        fields = {**asdict(row), **asdict(trial), "config_hash": trial.key}
        values = [fields[c] for c in COLUMNS]
        values = [json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in values]
        with self._db:  # one transaction per row
            self._db.execute(
                f"INSERT OR REPLACE INTO trials ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                values,
            )

    def frame(self, keys: set[str] | None = None) -> pd.DataFrame:
        """All rows (or those whose config hash is in ``keys``), metrics expanded into ``metric.*`` columns."""
        df = pd.read_sql_query(f"SELECT {', '.join(COLUMNS)} FROM trials", self._db)
        if keys is not None:
            df = df[df["config_hash"].isin(keys)]
        metrics = pd.json_normalize([json.loads(m) for m in df["metrics"]]).add_prefix("metric.")
        return pd.concat([df.drop(columns="metrics").reset_index(drop=True), metrics], axis=1)
