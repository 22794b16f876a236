"""A results store as text: ``imputebench store export`` and ``store import``.

A store is one SQLite file on one machine. Its rows travel as JSON Lines: a header line, then one line per trial
row and per attempt, each with the store's own columns and values (its JSON columns kept as the exact text
stored), sorted by trial key, so that an export is diffable, can be committed beside the reports written from
it, and merges into another store without changing a number.

Importing never alters or loses a row already in the target store: a trial row is added when the store lacks
it, and replaces the stored one only when that one is unfinished (failed, diverged, timeout) and the imported
one is ``ok``, the rule of a retry; a stored ``ok`` row stays as it is. An imported attempt is added unless the
same computation (trial, finish time, status) is already stored, numbered after the store's own attempts of
that trial when its number is taken. Sweeps run on several machines (or in sessions whose disks do not last)
thus combine into one store that resumes where all of them stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imputebench.runner.store import ATTEMPT_COLUMNS, COLUMNS, SCHEMA_VERSION, STATUSES, MergeCounts, ResultStore

FORMAT = "imputebench-store"
TABLES = {"trial": COLUMNS, "attempt": ATTEMPT_COLUMNS}


class ExchangeError(ValueError):
    """A file that is not a store export this version can read; the message names the file and the line."""


@dataclass(frozen=True)
class Records:
    """The rows of an export: each trial row and each attempt as ``{column: value}``."""

    trials: list[dict]
    attempts: list[dict]

    def lines(self) -> Iterator[str]:
        """The export's text: the header, the trials, then the attempts, in the order given (``raw_rows`` sorts
        them by key and number)."""
        yield json.dumps({"format": FORMAT, "schema": SCHEMA_VERSION, "trials": len(self.trials),
                          "attempts": len(self.attempts)}, sort_keys=True)
        for kind, rows in (("trial", self.trials), ("attempt", self.attempts)):
            for row in rows:
                yield json.dumps({"kind": kind, **row}, sort_keys=True)


def write_export(records: Records, path: Path) -> None:
    """``records`` as JSON Lines at ``path``, written whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(line + "\n" for line in records.lines()), encoding="utf-8")
    partial.replace(path)


def read_export(path: Path) -> Records:
    """The rows of the export at ``path``, every line checked first: ExchangeError naming the line otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ExchangeError(f"{path}: cannot read a store export: {err}") from None
    lines = text.splitlines()
    header = _parsed(path, 1, lines[0] if lines else "")
    if header.get("format") != FORMAT:
        raise ExchangeError(f"{path}: line 1 is not the header of an imputebench store export (format {FORMAT!r})")
    if header.get("schema") != SCHEMA_VERSION:
        raise ExchangeError(f"{path}: exported from store schema {header.get('schema')!r}; this version reads "
                            f"schema {SCHEMA_VERSION} only: export it again with this version")
    trials, attempts = [], []
    for number, line in enumerate(lines[1:], start=2):
        record = _parsed(path, number, line)
        kind = record.pop("kind", None)
        if kind not in TABLES:
            raise ExchangeError(f"{path}: line {number}: kind must be one of {', '.join(TABLES)}, got {kind!r}")
        if set(record) != set(TABLES[kind]):
            missing, extra = sorted(set(TABLES[kind]) - set(record)), sorted(set(record) - set(TABLES[kind]))
            raise ExchangeError(f"{path}: line {number}: a {kind} needs exactly the store's columns "
                                f"(missing {missing}, unknown {extra})")
        if record["status"] not in STATUSES or not isinstance(record["config_hash"], str) or not record["config_hash"]:
            raise ExchangeError(f"{path}: line {number}: a {kind} needs a key and a status among {', '.join(STATUSES)}")
        (trials if kind == "trial" else attempts).append(record)
    if (len(trials), len(attempts)) != (header.get("trials"), header.get("attempts")):
        raise ExchangeError(f"{path}: the header announces {header.get('trials')} trials and {header.get('attempts')} "
                            f"attempts but the file holds {len(trials)} and {len(attempts)}: it is cut or edited")
    return Records(trials, attempts)


def _parsed(path: Path, number: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ExchangeError(f"{path}: line {number} is not JSON: {err}") from None
    if not isinstance(record, dict):
        raise ExchangeError(f"{path}: line {number} is not a JSON object")
    return record


def export_store(store: Path, out: Path) -> Records:
    """Write the rows of the store at ``store`` to ``out``; the rows written."""
    with ResultStore(store, readonly=True) as results:
        records = Records(*results.raw_rows())
    write_export(records, out)
    return records


def import_export(source: Path, store: Path) -> MergeCounts:
    """Merge the export at ``source`` into the store at ``store`` (created if absent), every line checked first."""
    records = read_export(source)
    with ResultStore(store) as results:
        return results.merge(records.trials, records.attempts)
