"""Results store: one SQLite row per trial, committed as soon as the trial ends.

Every write is its own transaction (WAL journal), so a crash, Ctrl-C or ``kill -9``
in the middle of a sweep loses at most the trials that were running; a rerun skips
the trials already stored with status ``ok``. Each attempt of a trial (a retry
after a failure, a divergence or a timeout) is also kept in an ``attempts`` table,
numbered from 1, so failures stay countable after a retry succeeds.

A row is keyed by its trial's identity (:mod:`imputebench.runner.trials`) and shows it as readable
JSON (``identity``), with its ``setting`` (the identity's hash without the seed). The file says it is
ours: SQLite's ``application_id`` is :data:`APPLICATION_ID` and its ``user_version`` the schema
version. A file that is not an imputebench store, or one of a newer schema, is refused and left
byte-identical (it is inspected through a read-only connection); a store of an older version is
migrated in place in one transaction. Reading commands open a store read-only (``mode=ro``, or
``immutable=1`` where its folder cannot be written), so a store on a read-only medium can be read.

Concurrent sweeps on one store do no work twice: a sweep claims a trial (``claims`` table) before
running it and beats a heartbeat while it runs; others skip live claims and take over stale ones
(a claim whose heartbeat stopped: its process was killed). Rows are removed only by
:meth:`ResultStore.forget`, which records what it removed in the ``audit`` table.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from imputebench.runner.trials import Trial, setting_of

#: SQLite's application_id of an imputebench store ("IBNC")
APPLICATION_ID = 0x49424E43
#: the store schema this version writes (1 and 2: unmarked stores of earlier versions, migrated on opening)
SCHEMA_VERSION = 3
COLUMNS = (
    "config_hash", "setting", "identity", "data_sha256", "data_status", "numerics",
    "model", "dataset", "mechanism", "ratio", "seed", "protocol", "status", "reason",
    "metrics", "wall_time_s", "peak_rss_mb", "n_params", "config", "mask_hash", "versions",
    "git_commit", "hardware", "finished_at", "attempt",
)
#: the trials columns of unmarked stores: schema 1 (before numbered attempts) and schema 2
LEGACY_COLUMNS = {
    1: ("config_hash", "model", "dataset", "mechanism", "ratio", "seed", "protocol", "status", "reason",
        "metrics", "wall_time_s", "peak_rss_mb", "n_params", "config", "mask_hash", "versions",
        "git_commit", "hardware", "finished_at"),
}
LEGACY_COLUMNS[2] = (*LEGACY_COLUMNS[1], "attempt")
#: one row per attempt of a trial, failed ones included: what retries and failure counts read
ATTEMPT_COLUMNS = (
    "config_hash", "attempt", "setting", "model", "dataset", "mechanism", "ratio", "seed", "protocol", "status",
    "reason", "wall_time_s", "hardware", "finished_at",
)
LEGACY_ATTEMPT_COLUMNS = tuple(c for c in ATTEMPT_COLUMNS if c != "setting")
STATUSES = ("ok", "diverged", "failed", "timeout")
DATA_STATUSES = ("verified", "modified", "unverified", "unknown")

BUSY_TIMEOUT_S = 60.0
#: how often a sweep refreshes the heartbeat of its claims, and after how long without one a claim is stale
HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0

_STATUS_CHECK = f"CHECK (status IN ({', '.join(repr(s) for s in STATUSES)}))"
_TABLES = (
    f"""CREATE TABLE trials (
    config_hash TEXT PRIMARY KEY, setting TEXT NOT NULL, identity TEXT NOT NULL, data_sha256 TEXT,
    data_status TEXT NOT NULL CHECK (data_status IN ({', '.join(repr(s) for s in DATA_STATUSES)})), numerics INTEGER,
    model TEXT NOT NULL, dataset TEXT NOT NULL, mechanism TEXT NOT NULL, ratio REAL NOT NULL, seed INTEGER NOT NULL,
    protocol TEXT NOT NULL, status TEXT NOT NULL {_STATUS_CHECK}, reason TEXT,
    metrics TEXT NOT NULL, wall_time_s REAL, peak_rss_mb REAL, n_params INTEGER, config TEXT,
    mask_hash TEXT, versions TEXT, git_commit TEXT, hardware TEXT, finished_at TEXT, attempt INTEGER NOT NULL DEFAULT 1
)""",
    f"""CREATE TABLE attempts (
    config_hash TEXT NOT NULL, attempt INTEGER NOT NULL, setting TEXT NOT NULL, model TEXT NOT NULL,
    dataset TEXT NOT NULL, mechanism TEXT NOT NULL, ratio REAL NOT NULL, seed INTEGER NOT NULL, protocol TEXT NOT NULL,
    status TEXT NOT NULL {_STATUS_CHECK}, reason TEXT, wall_time_s REAL, hardware TEXT, finished_at TEXT,
    PRIMARY KEY (config_hash, attempt)
)""",
    """CREATE TABLE claims (
    config_hash TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT, pid INTEGER, claimed_at TEXT, heartbeat REAL NOT NULL
)""",
    """CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, action TEXT NOT NULL, selection TEXT NOT NULL,
    trials INTEGER NOT NULL, attempts INTEGER NOT NULL, command TEXT
)""",
    "CREATE INDEX trials_setting ON trials (setting)",
)
OUR_TABLES = {"trials", "attempts", "claims", "audit"}
#: a trial's row holds its latest attempt, except that a finished (ok) row is never replaced by a failure
_UPSERT_TRIAL = (
    f"INSERT INTO trials ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    f"ON CONFLICT (config_hash) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS[1:])} "
    "WHERE excluded.status = 'ok' OR trials.status != 'ok'"
)

_INSERT_ATTEMPT = f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})"

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


@dataclass(frozen=True)
class MergeCounts:
    """What :meth:`ResultStore.merge` did to the store."""

    added: int  # trials the store lacked
    finished: int  # unfinished stored trials replaced by an imported ok row
    kept: int  # imported trials whose stored row stayed (already ok, or both unfinished)
    attempts: int  # attempts added

    def __str__(self) -> str:
        return (f"{self.added} trials added, {self.finished} unfinished trials finished by an imported ok row, "
                f"{self.kept} kept as stored, {self.attempts} attempts added")


def row_config(row: pd.Series) -> dict:
    """The model configuration of a row of :meth:`ResultStore.frame` (stored as JSON; ``{}`` if absent)."""
    return json.loads(row["config"]) if isinstance(row["config"], str) else {}


class StoreError(RuntimeError):
    """The store file cannot be opened or is not an imputebench store."""


@dataclass(frozen=True)
class Selection:
    """Which trials :meth:`ResultStore.forget` removes: every given criterion must hold (at least one given)."""

    failed: bool = False  # trials whose row's status is not ok
    setting: str | None = None  # a setting's hash or a prefix of it (at least 6 characters)
    model: str | None = None
    dataset: str | None = None

    def where(self) -> tuple[str, list]:
        clauses, values = [], []
        if self.failed:
            clauses.append("status != 'ok'")
        if self.setting is not None:
            if len(self.setting) < 6:
                raise ValueError(f"--config {self.setting!r}: give at least 6 characters of the setting's hash")
            clauses.append("setting LIKE ?")
            values.append(f"{self.setting}%")
        for column in ("model", "dataset"):
            if getattr(self, column) is not None:
                clauses.append(f"{column} = ?")
                values.append(getattr(self, column))
        if not clauses:
            raise ValueError("say which rows to forget: --failed, --config, --model or --dataset")
        return " AND ".join(clauses), values

    def describe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _uri(path: Path, immutable: bool) -> str:
    return f"file:{quote(str(path.resolve()))}?{'immutable=1' if immutable else 'mode=ro'}"


def _folder_writable(path: Path) -> bool:
    """Whether the store's folder and file can be written (a read-only path or medium cannot)."""
    folder = path.parent if path.parent.exists() else Path(".")
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def _busy(err: sqlite3.Error) -> bool:
    """Whether ``err`` says another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED), which passes."""
    return isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err))


def _inspect(path: Path) -> tuple[str, str]:
    """What ``path`` holds, looked at through a read-only connection that changes nothing: ``("new", "")``,
    ``("current", "")``, ``("legacy", version)``, ``("newer", version)`` or ``("foreign", why)``."""
    if not path.exists() or path.stat().st_size == 0:
        return "new", ""
    if path.is_dir():
        return "foreign", "it is a folder"
    try:
        db = sqlite3.connect(_uri(path, immutable=not _folder_writable(path)), uri=True)
        try:
            app, version = db.execute("PRAGMA application_id").fetchone()[0], db.execute("PRAGMA user_version").fetchone()[0]
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - {"sqlite_sequence"}
            columns = tuple(name for _, name, *_ in db.execute("PRAGMA table_info(trials)"))
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        if _busy(err):
            raise  # another sweep is creating or migrating it: the caller waits and looks again
        return "foreign", f"not an SQLite database ({err})"
    if app == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            return "newer", str(version)
        return ("current", "") if version == SCHEMA_VERSION else ("legacy", str(version))
    if app != 0:
        return "foreign", f"its application id is {app:#x}, not imputebench's {APPLICATION_ID:#x}"
    if not tables and version == 0:  # an empty database: another sweep started at once is creating the store
        return "new", ""
    others = sorted(tables - {"trials", "attempts"})
    if others or "trials" not in tables:
        return "foreign", f"it holds other tables ({', '.join(others or sorted(tables)) or 'none of ours'})"
    for version, legacy in LEGACY_COLUMNS.items():
        if columns == legacy:
            return "legacy", str(version)
    return "foreign", f"its trials table has columns {', '.join(columns)}"


class ResultStore:
    """SQLite-backed result rows (``results/imputebench.sqlite`` by default).

    ``readonly=True`` opens an existing store for reading only (``leaderboard``, ``plot``, ``store show``);
    otherwise the store is created if absent, and an older one migrated.
    """

    def __init__(self, path: Path | str, readonly: bool = False) -> None:
        self.path, self.readonly = Path(path), readonly
        # Two sweeps started together on a new store both find it "new": one creates it while the other's
        # inspection or switch to WAL meets the lock, which SQLite may report at once rather than wait on.
        # That one waits and looks again (it then finds the store current), up to the busy timeout.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._open()
                return
            except sqlite3.DatabaseError as err:
                if not _busy(err) or time.monotonic() > deadline:
                    raise StoreError(f"{self.path} is not a usable results store: {err}") from None
                time.sleep(0.05)
            except OSError as err:
                raise StoreError(f"cannot open the results store {self.path}: {err}") from None

    def _open(self) -> None:
        """Inspect the file, refuse what cannot be used, then connect (creating or migrating the store)."""
        kind, detail = _inspect(self.path)
        if kind == "foreign":
            raise StoreError(f"{self.path} is not an imputebench results store ({detail}); it was only read, not "
                             "changed: pass another --store")
        if kind == "newer":
            raise StoreError(f"{self.path} was written by a newer imputebench (store schema {detail}; this version knows "
                             f"up to {SCHEMA_VERSION}); it was only read, not changed: upgrade imputebench to use it")
        if self.readonly and kind == "new":
            raise StoreError(f"no results store at {self.path}; run `imputebench run` first")
        if self.readonly and kind == "legacy" and not _folder_writable(self.path):
            raise StoreError(f"{self.path} was written by an older imputebench and cannot be migrated where it is "
                             "(read-only): copy it to a writable folder and read the copy")
        if self.readonly and kind == "current":
            self._db = sqlite3.connect(_uri(self.path, immutable=not _folder_writable(self.path)), uri=True,
                                       isolation_level=None)
            return
        # A new store, or an older one migrated first (even for reading).
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Other sweeps may write to the same file: wait up to a minute for their one-row transactions.
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            if kind == "new":
                self._create()
            elif kind == "legacy":
                self._migrate(int(detail))
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): all of it or nothing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _create(self) -> None:
        with self._transaction() as db:
            if db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
                return  # another sweep created it first
            for statement in _TABLES:
                db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate(self, version: int) -> None:
        """An older store, rebuilt in this schema in one transaction (a failure leaves it as it was). Its rows'
        data hash cannot be known: their identity says ``"data": {"sha256": null, "status": "unknown"}``, so their
        setting differs from every verified row's, and the leaderboard never pools them together."""
        with self._transaction() as db:
            if db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID and \
                    db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return  # another process migrated it first
            legacy = LEGACY_COLUMNS[version]
            old = pd.read_sql_query(f"SELECT {', '.join(legacy)} FROM trials", db)
            attempts = pd.read_sql_query(f"SELECT {', '.join(LEGACY_ATTEMPT_COLUMNS)} FROM attempts", db) \
                if "attempts" in {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} \
                else pd.DataFrame(columns=LEGACY_ATTEMPT_COLUMNS)
            db.execute("ALTER TABLE trials RENAME TO trials_legacy")
            db.execute("DROP TABLE IF EXISTS attempts")
            for statement in _TABLES:
                db.execute(statement)
            if "attempt" not in old:
                old["attempt"] = 1
            identities = [_legacy_identity(row) for row in old.itertuples()]
            old["identity"] = [json.dumps(i, sort_keys=True) for i in identities]
            old["setting"] = [setting_of(i) for i in identities]
            old = old.assign(data_sha256=None, data_status="unknown", numerics=None)
            db.executemany(f"INSERT INTO trials ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                           old[list(COLUMNS)].astype(object).where(old[list(COLUMNS)].notna(), None).values.tolist())
            if attempts.empty:  # schema 1 kept no attempts: each row is its trial's first
                attempts = old[list(LEGACY_ATTEMPT_COLUMNS)]
            settings = dict(zip(old["config_hash"], old["setting"]))
            attempts = attempts.assign(setting=attempts["config_hash"].map(settings).fillna("unknown"))
            db.executemany(_INSERT_ATTEMPT,
                           attempts[list(ATTEMPT_COLUMNS)].astype(object).where(attempts[list(ATTEMPT_COLUMNS)].notna(), None)
                           .values.tolist())
            db.execute("DROP TABLE trials_legacy")
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------------
    def finished_keys(self) -> set[str]:
        return {k for (k,) in self._db.execute("SELECT config_hash FROM trials WHERE status = 'ok'")}

    def attempts_made(self) -> dict[str, int]:
        """Trial key -> the number of its latest attempt stored (absent: never attempted)."""
        return dict(self._db.execute("SELECT config_hash, MAX(attempt) FROM attempts GROUP BY config_hash"))

    def attempted_since(self, key: str, attempt: int) -> str | None:
        """The stored status of trial ``key`` if an attempt numbered ``attempt`` or later is stored (another sweep
        made it), else None."""
        row = self._db.execute("SELECT t.status FROM trials t WHERE t.config_hash = ? AND EXISTS (SELECT 1 FROM attempts a "
                               "WHERE a.config_hash = t.config_hash AND a.attempt >= ?)", (key, attempt)).fetchone()
        return None if row is None else row[0]

    def attempts(self, keys: set[str] | None = None) -> pd.DataFrame:
        """Every attempt (or those of the trials whose key is in ``keys``): ``ATTEMPT_COLUMNS``."""
        df = pd.read_sql_query(f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts ORDER BY config_hash, attempt", self._db)
        return df if keys is None else df[df["config_hash"].isin(keys)].reset_index(drop=True)

    def frame(self, keys: set[str] | None = None) -> pd.DataFrame:
        """All rows (or those whose key is in ``keys``), metrics expanded into ``metric.*`` columns."""
        df = pd.read_sql_query(f"SELECT {', '.join(COLUMNS)} FROM trials", self._db)
        if keys is not None:
            df = df[df["config_hash"].isin(keys)]
        metrics = pd.json_normalize([json.loads(m) for m in df["metrics"]]).add_prefix("metric.")
        return pd.concat([df.drop(columns="metrics").reset_index(drop=True), metrics], axis=1)

    def row(self, key: str) -> dict:
        """The full stored row of the trial whose key is or starts with ``key`` (JSON columns decoded)."""
        rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM trials WHERE config_hash LIKE ?", (f"{key}%",)).fetchall()
        if len(rows) != 1:
            raise KeyError(f"{len(rows) or 'no'} stored trials' keys start with {key!r}" + ("" if rows else "; see `imputebench store show`"))
        row = dict(zip(COLUMNS, rows[0]))
        for column in ("identity", "metrics", "config", "versions"):
            row[column] = json.loads(row[column]) if isinstance(row[column], str) else row[column]
        return row

    def audit(self) -> pd.DataFrame:
        """Every ``forget``: when, what it selected, how many trials and attempts it removed, the command line."""
        return pd.read_sql_query("SELECT at, action, selection, trials, attempts, command FROM audit ORDER BY id", self._db)

    # --- writing --------------------------------------------------------------------------------
    def write(self, row: ResultRow, owner: str | None = None) -> None:
        """Store one attempt: in the attempts history, and as the trial's row unless that row is already ``ok``;
        the trial's claim by ``owner`` ends in the same transaction. An attempt is never overwritten: one whose
        number is already stored (another sweep computed the same attempt) is kept under the next free number,
        so the attempts table counts every computation."""
        trial = row.trial
        data = trial.identity["data"]
        fields = {**asdict(row), **asdict(trial), "config_hash": trial.key, "setting": trial.setting,
                  "identity": json.dumps(trial.identity, sort_keys=True), "data_sha256": data["sha256"],
                  "data_status": data["status"], "numerics": trial.numerics}
        fields = {k: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for k, v in fields.items()}
        with self._transaction() as db:  # both tables or neither
            latest = db.execute("SELECT MAX(attempt) FROM attempts WHERE config_hash = ?", (trial.key,)).fetchone()[0]
            fields["attempt"] = row.attempt if latest is None or latest < row.attempt else latest + 1
            db.execute(
                _INSERT_ATTEMPT,
                [fields[c] for c in ATTEMPT_COLUMNS],
            )
            db.execute(_UPSERT_TRIAL, [fields[c] for c in COLUMNS])
            if owner is not None:
                db.execute("DELETE FROM claims WHERE config_hash = ? AND owner = ?", (trial.key, owner))

    def raw_rows(self) -> tuple[list[dict], list[dict]]:
        """Every trial row (``COLUMNS``) and every attempt (``ATTEMPT_COLUMNS``) as stored, JSON columns as text:
        what ``store export`` writes (:mod:`imputebench.runner.store_exchange`)."""
        trials = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM trials ORDER BY config_hash").fetchall()
        attempts = self._db.execute(f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts ORDER BY config_hash, attempt").fetchall()
        return [dict(zip(COLUMNS, r)) for r in trials], [dict(zip(ATTEMPT_COLUMNS, r)) for r in attempts]

    def merge(self, trials: list[dict], attempts: list[dict]) -> MergeCounts:
        """Rows of another store (:meth:`raw_rows`), merged in one transaction without altering a finished row:
        a trial the store lacks is added; an unfinished stored trial is replaced by an imported ``ok`` row (as a
        retry would); any other stored row stays. An attempt is added unless the same computation (trial, finish
        time, status) is stored, renumbered after the store's attempts of its trial where its number is taken."""
        added = finished = kept = new_attempts = 0
        with self._transaction() as db:
            for row in trials:
                stored = db.execute("SELECT status FROM trials WHERE config_hash = ?", (row["config_hash"],)).fetchone()
                if stored is not None and (stored[0] == "ok" or row["status"] != "ok"):
                    kept += 1
                    continue
                db.execute(f"INSERT OR REPLACE INTO trials ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                           [row[c] for c in COLUMNS])
                added, finished = added + (stored is None), finished + (stored is not None)
            for row in sorted(attempts, key=lambda r: (r["config_hash"], r["attempt"])):
                key = row["config_hash"]
                if db.execute("SELECT 1 FROM attempts WHERE config_hash = ? AND finished_at IS ? AND status = ?",
                              (key, row["finished_at"], row["status"])).fetchone():
                    continue
                latest = db.execute("SELECT MAX(attempt) FROM attempts WHERE config_hash = ?", (key,)).fetchone()[0]
                taken = db.execute("SELECT 1 FROM attempts WHERE config_hash = ? AND attempt = ?", (key, row["attempt"])).fetchone()
                values = {**row, "attempt": latest + 1 if taken else row["attempt"]}
                db.execute(_INSERT_ATTEMPT,
                           [values[c] for c in ATTEMPT_COLUMNS])
                new_attempts += 1
        return MergeCounts(added, finished, kept, new_attempts)

    def forget(self, selection: Selection, command: str) -> tuple[int, int]:
        """Remove the trials ``selection`` matches and all their attempts, and record it in the audit table;
        (trials, attempts) removed."""
        where, values = selection.where()
        with self._transaction() as db:
            keys = [k for (k,) in db.execute(f"SELECT config_hash FROM trials WHERE {where}", values)]
            marks = ", ".join("?" * len(keys))
            n_attempts = db.execute(f"DELETE FROM attempts WHERE config_hash IN ({marks})", keys).rowcount if keys else 0
            n_trials = db.execute(f"DELETE FROM trials WHERE config_hash IN ({marks})", keys).rowcount if keys else 0
            db.execute("INSERT INTO audit (at, action, selection, trials, attempts, command) VALUES (?, 'forget', ?, ?, ?, ?)",
                       (_now(), json.dumps(selection.describe(), sort_keys=True), n_trials, n_attempts, command))
        return n_trials, n_attempts

    def count(self, selection: Selection) -> int:
        where, values = selection.where()
        return self._db.execute(f"SELECT COUNT(*) FROM trials WHERE {where}", values).fetchone()[0]

    # --- claims ---------------------------------------------------------------------------------
    def claim(self, key: str, owner: str) -> str:
        """Claim trial ``key`` for ``owner`` before running it: ``"claimed"`` (a stale claim is taken over),
        ``"done"`` (stored ok meanwhile) or ``"busy"`` (another owner's live claim)."""
        now = time.time()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM trials WHERE config_hash = ? AND status = 'ok'", (key,)).fetchone():
                return "done"
            holder = db.execute("SELECT owner, heartbeat FROM claims WHERE config_hash = ?", (key,)).fetchone()
            if holder is not None and holder[0] != owner and holder[1] > now - STALE_AFTER_S:
                return "busy"
            db.execute("INSERT OR REPLACE INTO claims (config_hash, owner, host, pid, claimed_at, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
                       (key, owner, socket.gethostname(), os.getpid(), _now(), now))
        return "claimed"

    def release(self, key: str, owner: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM claims WHERE config_hash = ? AND owner = ?", (key, owner))

    def release_all(self, owner: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def beat(self, owner: str) -> None:
        """Refresh the heartbeat of every claim ``owner`` holds."""
        with self._transaction() as db:
            db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), owner))

    def live_claims(self, keys: set[str], owner: str) -> set[str]:
        """The keys among ``keys`` that another owner holds a live claim on."""
        since = time.time() - STALE_AFTER_S
        rows = self._db.execute("SELECT config_hash FROM claims WHERE owner != ? AND heartbeat > ?", (owner, since))
        return {k for (k,) in rows if k in keys}


def _legacy_identity(row: object) -> dict:
    """The identity of a row written before identities were stored: what its columns say, its data unknown."""
    config = json.loads(row.config) if isinstance(row.config, str) else {}
    return {
        "model": row.model, "config": config, "dataset": row.dataset, "data": {"sha256": None, "status": "unknown"},
        "mechanism": {"name": row.mechanism}, "ratio": float(row.ratio), "protocol": {"name": row.protocol},
        "seed": int(row.seed), "numerics": None,
    }


def check_store(path: Path | str, writing: bool = True) -> None:
    """Refuse, before any trial runs and without creating or changing anything, a ``path`` that cannot be this
    command's store: not an imputebench store, a newer schema, or (``writing``) a place that cannot be written."""
    path = Path(path)
    kind, detail = _inspect(path)
    if kind == "foreign":
        raise StoreError(f"--store {path} is not an imputebench results store ({detail}); it was only read, not changed")
    if kind == "newer":
        raise StoreError(f"--store {path} was written by a newer imputebench (store schema {detail}; this version "
                         f"knows up to {SCHEMA_VERSION}); it was only read, not changed")
    if not writing:
        return
    existing = next(p for p in [path, *path.absolute().parents] if p.exists())
    if existing == path and not os.access(path, os.W_OK):
        raise StoreError(f"--store {path} is read-only: results cannot be written to it")
    if existing != path and not existing.is_dir():
        raise StoreError(f"--store {path}: {existing} is a file, not a folder")
    if not os.access(existing if existing != path else path.parent, os.W_OK):
        raise StoreError(f"--store {path}: the folder {existing if existing != path else path.parent} cannot be written")
