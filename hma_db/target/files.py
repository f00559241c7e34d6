"""Synthetic tables as files: one CSV or Parquet file per table in a directory.

:func:`write_files` is the file counterpart of :func:`hma_db.target.write`, and what
``HMASynthesizer.sample_to_directory`` and ``hma-db sample MODEL DIR/`` use:

* one file per table, named after the table: ``Invoice.csv`` or ``Invoice.parquet``. A table
  name that cannot be a file name (a path separator, a leading dot, two names that differ only
  in case) is refused. The directory is created when missing; other files in it are left alone.
* ``if_exists``: ``fail`` (default) refuses, before anything is sampled or written, when a
  table's file exists, and lists those files; ``replace`` overwrites them. ``truncate`` and
  ``append`` keep a database table's definition or continue its keys; files have neither, so
  they are refused (:class:`~hma_db.ConfigError`).
* all or nothing, as in a database transaction: every file is written under a hidden temporary
  name beside its final one and renamed into place once every table is complete, so a failure
  (or Ctrl-C) leaves the directory as it was.
* the tables come as one ``{table: DataFrame}`` or as an iterable of such chunks
  (``HMASynthesizer.sample_chunks``) appended to the files, so memory depends on the chunk
  size, not on the number of rows.

Values. **CSV**: a header row, UTF-8, commas, an empty field for NULL, ISO 8601 dates and times,
JSON text for JSON and array values, ``\\x``-prefixed hex for bytes (PostgreSQL's bytea text),
and integer columns that hold NULLs (a float dtype in pandas) written as integers when the
metadata says they are integers (keys, ``computer_representation: Int64``). **Parquet**: the
pandas dtypes are kept (``pandas.read_parquet`` gives them back); JSON and array values,
uuids and IP addresses, which Arrow has no type for, are written as text; decimals as
``decimal(38, scale)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from pathlib import Path

import pandas as pd

from hma_db.errors import ConfigError, WriteError
from hma_db.schema import Metadata, value_kind

logger = logging.getLogger(__name__)

FORMATS = ("csv", "parquet")
IF_EXISTS = ("fail", "replace")
Tables = Mapping[str, pd.DataFrame]

# Object columns whose values a format cannot hold as they are: written as text.
_TEXT_KINDS = {"dict", "list", "uuid", "ip", "mixed", "other"}


def write_files(tables: Tables | Iterable[Tables], directory: str | os.PathLike, *,
                format: str = "csv", if_exists: str = "fail",
                metadata: Metadata | None = None,
                progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Write tables into ``directory``, one ``<table>.csv`` or ``<table>.parquet`` each.

    Args:
        tables: ``{table: DataFrame}``, or an iterable of such chunks appended in order (every
            chunk has every table; empty frames are skipped).
        directory: created when missing.
        format: ``"csv"`` or ``"parquet"``.
        if_exists: ``"fail"`` (default: refuse when a table's file exists) or ``"replace"``.
        metadata: the tables (their files are checked before the first chunk is drawn, and
            listed in parent-to-child order) and column options (integer columns).
        progress: called as ``progress(table, rows)`` after each table of each chunk.

    Returns:
        ``{table: rows written}``.

    Raises:
        ConfigError: an unknown ``format`` or ``if_exists``.
        WriteError: files exist under ``if_exists="fail"``, a table name is not a file name, or
            writing failed; the directory was left as it was.

    Example:
        >>> write_files(synthesizer.sample(), "synthetic/", format="parquet")
        {'Artist': 275, 'Album': 347, ...}
    """
    _check_arguments(format, if_exists)
    chunks: Iterator[Tables] = iter([tables]) if isinstance(tables, Mapping) else iter(tables)
    if metadata is not None:
        names = metadata.topological_order()
    else:
        first = next(chunks, {})
        names, chunks = list(first), chain([first], chunks)
    directory = Path(directory)
    paths = table_paths(directory, names, format)
    _check_existing(paths, if_exists)
    created = _make_directory(directory)
    files: dict[str, _File] = {}
    try:
        for table, path in paths.items():
            files[table] = (_CsvFile if format == "csv" else _ParquetFile)(table, path, metadata)
        for chunk in chunks:
            for table, file in files.items():
                if table not in chunk:
                    raise WriteError(f"Table '{table}' is missing from a chunk of the data; "
                                     "every chunk must hold every table.")
                rows = file.add(chunk[table]) if chunk[table] is not None else 0
                if progress is not None and rows:
                    progress(table, rows)
        for file in files.values():
            if file.conversions is None:  # no frame at all: the file still gets its columns
                file.add(pd.DataFrame(columns=list(file.columns)))
            file.close()
        if if_exists == "fail":
            _check_existing(paths, if_exists)  # nothing appeared while we were writing
        for file in files.values():
            os.replace(file.temporary, file.path)
    except BaseException:
        for file in files.values():
            file.discard()
        for path in reversed(created):
            with contextlib.suppress(OSError):  # not empty (someone else's files): leave it
                path.rmdir()
        raise
    rows = {t: f.rows for t, f in files.items()}
    for table, count in rows.items():
        logger.info("write: %s: %d row(s) to %s", table, count, paths[table])
    return rows


def _check_arguments(format: str, if_exists: str) -> None:
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}; found {format!r}.")
    if if_exists not in IF_EXISTS:
        raise ConfigError(
            f"if_exists must be 'fail' or 'replace' for files; found {if_exists!r} ('truncate' "
            "and 'append' keep a database table's definition or continue its keys, which "
            "files do not have).")


def table_paths(directory: Path, tables: Iterable[str], format: str) -> dict[str, Path]:
    """``{table: directory / "<table>.<format>"}``; refuses names that are not file names."""
    paths: dict[str, Path] = {}
    folded: dict[str, str] = {}
    for table in tables:
        if not table or table.startswith(".") or any(c in table for c in "/\\\0"):
            raise WriteError(f"Table '{table}' cannot be written as a file: its name is empty, "
                             "starts with a dot or holds a path separator.")
        other = folded.setdefault(table.casefold(), table)
        if other != table:
            raise WriteError(f"Tables '{other}' and '{table}' would share one file on a "
                             "case-insensitive file system; write them to a database instead.")
        paths[table] = directory / f"{table}.{format}"
    return paths


def _check_existing(paths: dict[str, Path], if_exists: str) -> None:
    directory = next(iter(paths.values())).parent if paths else None
    if directory is not None and directory.exists() and not directory.is_dir():
        raise WriteError(f"'{directory}' exists and is not a directory.")
    found = [p.name for p in paths.values() if p.exists()]
    if found and if_exists == "fail":
        raise WriteError(f"{len(found)} file(s) already exist in '{directory}': "
                         f"{', '.join(found)}; pass if_exists='replace' (--if-exists replace) "
                         "to overwrite them.")


def _make_directory(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; return those it created, outermost first."""
    missing = [p for p in [directory, *directory.parents] if not p.exists()][::-1]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"Cannot create the directory '{directory}': {exc}") from exc
    return missing


# ------------------------------------------------------------------------------------ files
class _File:
    """One table's temporary file: values made writable, chunks appended, rows counted."""

    suffix = ""

    def __init__(self, table: str, path: Path, metadata: Metadata | None):
        self.table, self.path, self.rows = table, path, 0
        self.columns = (metadata.tables.get(table, {}).get("columns", {})
                        if metadata is not None else {})
        # Beside the final name (same file system, so the rename is atomic), hidden, and
        # created with "x" so the usual permissions apply and no file is ever overwritten.
        self.temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        self.temporary.open("x").close()
        self.conversions: dict[str, str] | None = None  # decided on the first chunk

    def add(self, frame: pd.DataFrame) -> int:
        if self.conversions is not None and len(frame) == 0:
            return 0
        if self.conversions is None:
            self.conversions = {c: self._conversion(frame[c]) for c in frame.columns}
        frame = frame.reset_index(drop=True)
        out = {c: _convert(frame[c], self.conversions.get(c)) for c in frame.columns}
        try:
            self._append(pd.DataFrame(out, index=frame.index))
        except (OSError, ValueError, TypeError, ArithmeticError) as exc:
            raise WriteError(f"Writing table '{self.table}' to {self.path} failed: "
                             f"{type(exc).__name__}: {exc}; the directory was left as it "
                             "was.") from exc
        self.rows += len(frame)
        return len(frame)

    def _conversion(self, series: pd.Series) -> str | None:
        if series.dtype != object:
            return None
        kind = value_kind(series)
        return "text" if kind in _TEXT_KINDS or kind == "none" else None

    def _append(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the temporary file."""

    def discard(self) -> None:
        self.close()
        self.temporary.unlink(missing_ok=True)


class _CsvFile(_File):
    def _conversion(self, series: pd.Series) -> str | None:
        options = self.columns.get(series.name, {})
        integer = options.get("sdtype") == "id" or options.get("computer_representation") == "Int64"
        if series.dtype.kind == "f" and integer:
            return "integer"
        if series.dtype == object and value_kind(series) == "bytes":
            return "hex"
        return super()._conversion(series)

    def _append(self, frame: pd.DataFrame) -> None:
        with self.temporary.open("a", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, header=self.rows == 0 and handle.tell() == 0,
                         lineterminator="\n")


class _ParquetFile(_File):
    def __init__(self, table: str, path: Path, metadata: Metadata | None):
        super().__init__(table, path, metadata)
        self.writer = None
        self.schema = None

    def _append(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            # The first chunk fixes the schema of every later one: an all-NULL column becomes
            # text, decimals get the widest precision, so later chunks fit.
            fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else
                      f.with_type(pa.decimal128(38, f.type.scale)) if pa.types.is_decimal(f.type)
                      else f for f in table.schema]
            self.schema = pa.schema(fields, metadata=table.schema.metadata)
            table = table.cast(self.schema)
            self.writer = pq.ParquetWriter(self.temporary, self.schema)
        else:
            try:
                table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise TypeError(f"a chunk does not fit the first chunk's columns: {exc}") from exc
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _convert(series: pd.Series, conversion: str | None) -> pd.Series:
    if conversion is None:
        return series
    if conversion == "integer":
        values = series.dropna()
        return series.astype("Int64") if (values == values.round()).all() else series
    present = series.notna()
    if conversion == "hex":
        return series.where(~present, series[present].map(lambda v: "\\x" + bytes(v).hex()))
    return series.where(~present, series[present].map(_as_text)).astype(object)


def _as_text(value) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value if isinstance(value, str) else str(value)
