"""Vectorised parsers for the raw UCI files: delimited text, ARFF and Excel.

Every parser keeps the 1-based line number (row number for spreadsheets) of
each record as the index of the frame it returns, so that any problem found
later names the file and the line, e.g. ``.../zoo/zoo.data: line 17: expected
18 fields, found 17``. Columns are declared by hand with :class:`Column`
(see :mod:`imputebench.data.sources`); values are never used to guess a kind.

All row work goes through pandas string and numeric operations; the only
Python loops run over columns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from imputebench.data.dataset import DatasetError
from imputebench.schema import Feature

Role = Literal["real", "positive", "count", "categorical", "ordinal", "drop", "target"]
#: Roles that become features: numeric ones (one number per cell) and coded ones (declared levels).
NUMERIC_ROLES: tuple[str, ...] = ("real", "positive", "count")
CODED_ROLES: tuple[str, ...] = ("categorical", "ordinal")
#: Tokens that mean "no value" in the UCI files (see the .names files, section "Missing Attribute Values").
MISSING_TOKENS: tuple[str, ...] = ("?",)


@dataclass(frozen=True)
class Column:
    """One column of a source file, declared by hand.

    ``levels`` are the raw values a categorical or ordinal feature (or a class
    target) may take in the file, in code order (for an ordinal feature, from
    lowest to highest): strings are compared as text, numbers
    numerically (so ``1``, ``1.0`` and ``1.00`` are the same level). ``labels``
    name the levels (default: the levels as text). Role ``drop`` columns (IDs,
    a second response) are read, counted and dropped; a ``target`` without
    levels is a numeric response.
    """

    name: str
    role: Role = "real"
    levels: tuple[str, ...] | tuple[float, ...] = ()
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.labels and len(self.labels) != len(self.levels):
            raise ValueError(f"column {self.name!r}: {len(self.labels)} labels for {len(self.levels)} levels")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"column {self.name!r}: duplicate levels {self.levels}")

    @property
    def numeric_levels(self) -> bool:
        return bool(self.levels) and not isinstance(self.levels[0], str)

    @property
    def categories(self) -> tuple[str, ...]:
        return self.labels or tuple(_level_text(v) for v in self.levels)

    def feature(self) -> Feature:
        if self.role in CODED_ROLES:
            return Feature(self.name, self.role, self.categories)
        return Feature(self.name, self.role)


def real(*names: str) -> tuple[Column, ...]:
    """Real-valued feature columns."""
    return tuple(Column(n, "real") for n in names)


def positive(*names: str) -> tuple[Column, ...]:
    """Non-negative real feature columns (HI-VAE's positive kind models log(1 + x))."""
    return tuple(Column(n, "positive") for n in names)


def count(*names: str) -> tuple[Column, ...]:
    """Count feature columns: non-negative integers."""
    return tuple(Column(n, "count") for n in names)


def ordinal(name: str, levels: Sequence[str] | Sequence[float], labels: Sequence[str] = ()) -> Column:
    """An ordinal feature with its declared levels (and optional labels), lowest first."""
    return Column(name, "ordinal", tuple(levels), tuple(labels))


def cat(name: str, levels: Sequence[str] | Sequence[float], labels: Sequence[str] = ()) -> Column:
    """A categorical feature with its declared levels (and optional labels) in code order."""
    return Column(name, "categorical", tuple(levels), tuple(labels))


def drop(name: str) -> Column:
    """A column that is read (so the field count is checked) and then dropped, e.g. an ID."""
    return Column(name, "drop")


def target(name: str, classes: Sequence[str] | Sequence[float] = ()) -> Column:
    """The prediction target: class labels (checked against ``classes``) or, without classes, a number."""
    return Column(name, "target", tuple(classes))


def _level_text(value: str | float) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def fail(path: Path, message: str, line: int | None = None) -> DatasetError:
    """A :class:`DatasetError` naming the file and, when known, the 1-based line."""
    where = f"{path}: line {line}" if line is not None else f"{path}"
    return DatasetError(f"{where}: {message}")


# --- text files -----------------------------------------------------------------------
def read_lines(path: Path) -> pd.Series:
    """The file's lines (``\\r\\n`` or ``\\n`` endings) indexed by 1-based line number, blank lines dropped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail(path, "file not found") from None
    except OSError as err:
        raise fail(path, f"cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise fail(path, f"not UTF-8 text (byte {err.start})", line) from None
    lines = pd.Series(text.split("\n"), dtype=object)
    lines.index = np.arange(1, len(lines) + 1)
    lines = lines.str.removesuffix("\r")
    return lines[lines.str.strip() != ""]


def split_fields(lines: pd.Series, path: Path, n_fields: int, sep: str | None) -> pd.DataFrame:
    """Split each line into exactly ``n_fields`` stripped tokens (``sep=None``: runs of whitespace).

    Raises :class:`DatasetError` for an empty table or the first line with a wrong field count.
    """
    if lines.empty:
        raise fail(path, "no rows")
    pattern = r"\s+" if sep is None else re.escape(sep)
    body = lines.str.strip() if sep is None else lines
    counts = body.str.count(pattern) + 1
    wrong = counts != n_fields
    if wrong.any():
        line = int(counts.index[wrong.to_numpy()][0])
        raise fail(path, f"expected {n_fields} fields, found {int(counts[line])}", line)
    frame = body.str.split(pattern, n=n_fields - 1, expand=True, regex=True)
    return frame.apply(lambda column: column.str.strip())


def read_delimited(
    path: Path,
    columns: Sequence[Column],
    sep: str | None = ",",
    header: bool = False,
    comment: str | None = None,
) -> pd.DataFrame:
    """Tokens of a delimited text file, one column per declared :class:`Column`.

    Lines starting with ``comment`` are dropped (C4.5 files such as
    ``adult.test`` start with ``|1x3 Cross validator``); with ``header`` the
    first line must name the declared columns, in order (surrounding double
    quotes are ignored).
    """
    lines = read_lines(path)
    if comment is not None:
        lines = lines[~lines.str.startswith(comment)]
    if header:
        if lines.empty:
            raise fail(path, "no rows")
        header_line = int(lines.index[0])
        names = split_fields(lines.iloc[:1], path, len(columns), sep).iloc[0].str.strip('"')
        expected = [c.name for c in columns]
        if names.tolist() != expected:
            raise fail(path, f"unexpected header {names.tolist()}; expected {expected}", header_line)
        lines = lines.iloc[1:]
    frame = split_fields(lines, path, len(columns), sep)
    frame.columns = [c.name for c in columns]
    return frame


# --- ARFF --------------------------------------------------------------------------------
_ARFF_ATTRIBUTE = re.compile(r"^@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s+(.*?)\s*$", re.IGNORECASE)


def read_arff(path: Path) -> tuple[tuple[Column, ...], pd.DataFrame]:
    """Nominal attributes (name and levels in header order) and data tokens of an ARFF file.

    Format: https://waikato.github.io/weka-wiki/formats_and_processing/arff_stable/ .
    Every attribute must be nominal (``{a,b,...}``); ``%`` lines are comments.
    The last attribute is returned with role ``target``; the rest are categorical.
    """
    lines = read_lines(path)
    if lines.empty:
        raise fail(path, "no rows")
    lines = lines[~lines.str.lstrip().str.startswith("%")]
    stripped = lines.str.strip()
    is_data = stripped.str.lower() == "@data"
    if not is_data.any():
        raise fail(path, "no @data section: not an ARFF file")
    data_line = int(lines.index[is_data.to_numpy()][0])
    head = stripped[(lines.index < data_line) & stripped.str.lower().str.startswith("@attribute")]
    parts = head.str.extract(_ARFF_ATTRIBUTE)
    if parts.empty:
        raise fail(path, "no @attribute declarations")
    nominal = (parts[1].str.startswith("{", na=False) & parts[1].str.endswith("}", na=False)).to_numpy(dtype=bool)
    if not nominal.all():
        line = int(parts.index[~nominal][0])
        raise fail(path, "only nominal ({...}) attributes are supported", line)
    names = parts[0].str.strip("'\"").tolist()
    levels = parts[1].str.slice(1, -1).str.split(",").tolist()
    columns = [cat(n, tuple(v.strip().strip("'\"") for v in lv)) for n, lv in zip(names, levels)]
    columns[-1] = target(names[-1], columns[-1].levels)
    data = lines[lines.index > data_line]
    frame = split_fields(data, path, len(columns), ",")
    frame.columns = names
    return tuple(columns), frame


# --- spreadsheets ------------------------------------------------------------------------------
def read_excel(path: Path, columns: Sequence[Column], header: Sequence[str]) -> pd.DataFrame:
    """Cells of the first sheet, indexed by spreadsheet row number (the header is row 1).

    Error messages call that row number the "line".

    ``.xls`` is read with xlrd, ``.xlsx`` with openpyxl (through pandas). The
    header must equal ``header`` (whitespace runs collapsed). Columns are renamed to the declared ones.
    """
    if not path.exists():
        raise fail(path, "file not found")
    try:
        if path.suffix.lower() == ".xls":
            frame = _read_xls(path)
        else:
            frame = pd.read_excel(path, header=None, dtype=object, engine="openpyxl")
    except Exception as err:  # the spreadsheet readers raise many unrelated types for corrupt files
        raise fail(path, f"cannot read spreadsheet: {err}") from None
    frame.index = np.arange(1, len(frame) + 1)
    if frame.empty:
        raise fail(path, "no rows")
    found = [re.sub(r"\s+", " ", str(v)).strip() for v in frame.iloc[0]]
    if found != [re.sub(r"\s+", " ", h).strip() for h in header]:
        raise fail(path, f"unexpected header {found}; expected {list(header)}", 1)
    frame = frame.iloc[1:].dropna(how="all")
    if frame.empty:
        raise fail(path, "no rows")
    frame.columns = [c.name for c in columns]
    return frame


def _read_xls(path: Path) -> pd.DataFrame:
    """First sheet of a legacy ``.xls`` via xlrd (pandas' xlrd engine is deprecated)."""
    import xlrd

    sheet = xlrd.open_workbook(str(path), on_demand=True).sheet_by_index(0)
    cells = {j: sheet.col_values(j) for j in range(sheet.ncols)}
    return pd.DataFrame(cells, dtype=object).replace("", np.nan)


# --- decoding tokens to feature space -------------------------------------------------------------
@dataclass(frozen=True)
class Decoded:
    """Feature-space values, the target and the feature list decoded from one file."""

    values: np.ndarray
    features: tuple[Feature, ...]
    target: np.ndarray | None
    target_name: str | None


def decode(frame: pd.DataFrame, columns: Sequence[Column], path: Path, missing: Sequence[str] = MISSING_TOKENS) -> Decoded:
    """Turn a frame of tokens (index = line numbers) into feature space, following ``columns``.

    Numeric features (real, positive, count) become floats and categorical and
    ordinal features codes ``0..K-1``; a ``missing`` token becomes ``NaN``.
    Raises :class:`DatasetError` naming the file and line of the first
    non-numeric value, undeclared category, negative positive value or
    non-count value of a count feature.
    """
    features = [c for c in columns if c.role in NUMERIC_ROLES + CODED_ROLES]
    values = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, column in enumerate(features):
        tokens = frame[column.name]
        values[:, j] = _decode_column(tokens, column, path, missing)
    targets = [c for c in columns if c.role == "target"]
    if not targets:
        return Decoded(values, tuple(c.feature() for c in features), None, None)
    (tcol,) = targets
    return Decoded(values, tuple(c.feature() for c in features), _decode_target(frame[tcol.name], tcol, path), tcol.name)


def _is_missing(tokens: pd.Series, missing: Sequence[str]) -> np.ndarray:
    return tokens.isin(list(missing)).to_numpy()


def _first_bad(tokens: pd.Series, bad: np.ndarray, path: Path, column: Column, what: str) -> DatasetError:
    line = int(tokens.index[bad][0])
    value = tokens[line]
    shown = "an empty cell" if pd.isna(value) else f"{value!r}"
    return fail(path, f"column {column.name!r}: {shown} is {what}", line)


def _numbers(tokens: pd.Series, column: Column, path: Path, missing: Sequence[str]) -> np.ndarray:
    """Floats, NaN for missing tokens; any other non-number (or inf) is an error."""
    absent = _is_missing(tokens, missing)
    numbers = pd.to_numeric(tokens.where(~absent), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~absent & ~np.isfinite(numbers)
    if bad.any():
        raise _first_bad(tokens, bad, path, column, "not a number")
    return numbers


def _codes(tokens: pd.Series, column: Column, path: Path, missing: Sequence[str]) -> np.ndarray:
    """Category codes in declared level order, NaN for missing; undeclared levels are errors."""
    absent = _is_missing(tokens, missing)
    if column.numeric_levels:
        keys: pd.Series | np.ndarray = _numbers(tokens, column, path, missing)
    else:
        keys = tokens.where(~absent).astype(object)
    levels = [float(v) for v in column.levels] if column.numeric_levels else list(column.levels)
    codes = pd.Index(levels).get_indexer(keys).astype(np.float64)
    bad = ~absent & (codes < 0)
    if bad.any():
        declared = ", ".join(_level_text(v) for v in column.levels)
        raise _first_bad(tokens, bad, path, column, f"not a declared category (declared: {declared})")
    codes[absent] = np.nan
    return codes


def _decode_column(tokens: pd.Series, column: Column, path: Path, missing: Sequence[str]) -> np.ndarray:
    if column.role in CODED_ROLES:
        return _codes(tokens, column, path, missing)
    numbers = _numbers(tokens, column, path, missing)
    if column.role == "positive":
        bad = numbers < 0
        if bad.any():
            raise _first_bad(tokens, bad, path, column, "negative (declared positive)")
    elif column.role == "count":
        bad = np.isfinite(numbers) & ((numbers < 0) | (numbers != np.round(numbers)))
        if bad.any():
            raise _first_bad(tokens, bad, path, column, "not a count (a non-negative integer)")
    return numbers


def _decode_target(tokens: pd.Series, column: Column, path: Path) -> np.ndarray:
    """Class labels as text (checked against the declared classes) or a float response; none may be missing."""
    if not column.levels:
        return _numbers(tokens, column, path, missing=())
    codes = _codes(tokens, column, path, missing=())
    return np.asarray(column.categories, dtype=str)[codes.astype(np.int64)]
