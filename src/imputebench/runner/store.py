"""Results store: one SQLite row per trial, committed as soon as the trial ends.

Every write is its own transaction (WAL journal), so a crash, Ctrl-C or ``kill -9``
in the middle of a sweep loses at most the trials that were running; a rerun skips
the trials already stored with status ``ok``. Each attempt of a trial (a retry
after a failure, a divergence or a timeout) is also kept in an ``attempts`` table,
numbered from 1, so failures stay countable after a retry succeeds.
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
    "git_commit", "hardware", "finished_at", "attempt",
)
#: the columns of stores written before attempts were numbered (opened and upgraded in place)
LEGACY_COLUMNS = COLUMNS[:-1]
#: one row per attempt of a trial, failed ones included: what retries and failure counts read
ATTEMPT_COLUMNS = (
    "config_hash", "attempt", "model", "dataset", "mechanism", "ratio", "seed", "protocol", "status", "reason",
    "wall_time_s", "hardware", "finished_at",
)
STATUSES = ("ok", "diverged", "failed", "timeout")

BUSY_TIMEOUT_S = 60.0

_STATUS_CHECK = f"CHECK (status IN ({', '.join(repr(s) for s in STATUSES)}))"
_TRIALS = f"""
CREATE TABLE IF NOT EXISTS trials (
    config_hash TEXT PRIMARY KEY, model TEXT NOT NULL, dataset TEXT NOT NULL, mechanism TEXT NOT NULL,
    ratio REAL NOT NULL, seed INTEGER NOT NULL, protocol TEXT NOT NULL,
    status TEXT NOT NULL {_STATUS_CHECK}, reason TEXT,
    metrics TEXT NOT NULL, wall_time_s REAL, peak_rss_mb REAL, n_params INTEGER, config TEXT,
    mask_hash TEXT, versions TEXT, git_commit TEXT, hardware TEXT, finished_at TEXT, attempt INTEGER NOT NULL DEFAULT 1
)
"""
_ATTEMPTS = f"""
CREATE TABLE IF NOT EXISTS attempts (
    config_hash TEXT NOT NULL, attempt INTEGER NOT NULL, model TEXT NOT NULL, dataset TEXT NOT NULL,
    mechanism TEXT NOT NULL, ratio REAL NOT NULL, seed INTEGER NOT NULL, protocol TEXT NOT NULL,
    status TEXT NOT NULL {_STATUS_CHECK}, reason TEXT, wall_time_s REAL, hardware TEXT, finished_at TEXT,
    PRIMARY KEY (config_hash, attempt)
)
"""
#: a trial's row holds its latest attempt, except that a finished (ok) row is never replaced by a failure
_UPSERT_TRIAL = (
    f"INSERT INTO trials ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    f"ON CONFLICT (config_hash) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS[1:])} "
    "WHERE excluded.status = 'ok' OR trials.status != 'ok'"
)


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
    #: 1 for a trial's first run, then one more for each retry (of this sweep or a later one)
    attempt: int = 1
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
            with self._db:
                self._db.execute(_TRIALS)
                self._db.execute(_ATTEMPTS)
            columns = tuple(name for _, name, *_ in self._db.execute("PRAGMA table_info(trials)"))
            if columns == LEGACY_COLUMNS:
                self._upgrade()
                columns = COLUMNS
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a usable results store: {err}") from None
        if columns != COLUMNS:
            self._db.close()
            raise StoreError(
                f"{self.path} was written by another version of imputebench (columns {', '.join(columns)}); "
                "it is left untouched: pass a new --store"
            )

    def _upgrade(self) -> None:
        """A store from before numbered attempts: every row becomes attempt 1, and its history's first entry.
        The table is rebuilt (SQLite cannot alter a CHECK) in one transaction, so a failure leaves it as it was."""
        with self._db:
            self._db.execute("ALTER TABLE trials RENAME TO trials_legacy")
            self._db.execute(_TRIALS)
            legacy = ", ".join(LEGACY_COLUMNS)
            self._db.execute(f"INSERT INTO trials ({legacy}, attempt) SELECT {legacy}, 1 FROM trials_legacy")
            self._db.execute("DROP TABLE trials_legacy")
            self._db.execute(
                f"INSERT OR IGNORE INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) SELECT {', '.join(ATTEMPT_COLUMNS)} FROM trials"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished_keys(self) -> set[str]:
        return {k for (k,) in self._db.execute("SELECT config_hash FROM trials WHERE status = 'ok'")}

    def attempts_made(self) -> dict[str, int]:
        """Trial key -> the number of its latest attempt stored (absent: never attempted)."""
        return dict(self._db.execute("SELECT config_hash, MAX(attempt) FROM attempts GROUP BY config_hash"))

    def write(self, row: ResultRow) -> None:
        """Store one attempt: in the attempts history, and as the trial's row unless that row is already ``ok``."""
        trial = row.trial
        fields = {**asdict(row), **asdict(trial), "config_hash": trial.key}
        fields = {k: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for k, v in fields.items()}
        with self._db:  # one transaction per attempt: both tables or neither
            self._db.execute(
                f"INSERT OR REPLACE INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})",
                [fields[c] for c in ATTEMPT_COLUMNS],
            )
            self._db.execute(_UPSERT_TRIAL, [fields[c] for c in COLUMNS])

    def attempts(self, keys: set[str] | None = None) -> pd.DataFrame:
        """Every attempt (or those of the trials whose key is in ``keys``): ``ATTEMPT_COLUMNS``."""
        df = pd.read_sql_query(f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts ORDER BY config_hash, attempt", self._db)
        return df if keys is None else df[df["config_hash"].isin(keys)].reset_index(drop=True)

    def frame(self, keys: set[str] | None = None) -> pd.DataFrame:
        """All rows (or those whose config hash is in ``keys``), metrics expanded into ``metric.*`` columns."""
        df = pd.read_sql_query(f"SELECT {', '.join(COLUMNS)} FROM trials", self._db)
        if keys is not None:
            df = df[df["config_hash"].isin(keys)]
        metrics = pd.json_normalize([json.loads(m) for m in df["metrics"]]).add_prefix("metric.")
        return pd.concat([df.drop(columns="metrics").reset_index(drop=True), metrics], axis=1)
