"""Checking the values of a job file, with the key and line in every message.

:class:`Checker` walks the dicts ``tomllib`` returns against a spec (key -> check function); each
check function takes the checker, the key path and the value, and returns the value converted
(``${VAR}`` expanded, paths resolved, durations parsed) or raises a
:class:`~hma_db.ConfigError` that names the key and its line (from :mod:`hma_db.jobs.toml_lines`).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from faker.config import AVAILABLE_LOCALES

from hma_db.errors import ConfigError, MetadataError
from hma_db.schema import (
    BASIC_SDTYPES,
    TABLE_POLICIES,
    check_where,
    is_faker_provider,
    parse_policy,
)
from hma_db.synthesizer import DISTRIBUTIONS, NON_PARAMETRIC

KeyPath = tuple[str, ...]
IF_EXISTS = ("fail", "replace", "truncate", "append")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# ------------------------------------------------------------------------------ messages
def line_of(lines: dict[KeyPath, int], key: KeyPath) -> int | None:
    """The line of a key, or of the closest enclosing table that has one."""
    for end in range(len(key), 0, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None


def location(path: Path | None, line: int | None) -> str:
    name = str(path) if path is not None else "job file"
    return f"{name}, line {line}" if line is not None else name


def dotted(key: KeyPath) -> str:
    """A key path as written in TOML: ``columns."Track.Name".sdtype``."""
    return ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"' for k in key)


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "the string",
             list: "a list", dict: "a table"}
    kind = next((v for t, v in kinds.items() if isinstance(value, t)), type(value).__name__)
    return f"the string {value!r}" if isinstance(value, str) else \
        f"{kind} ({value!r})" if isinstance(value, (bool, int, float)) else kind


def suggestion(word: str, known: list[str]) -> str:
    """``"; did you mean 'scale'?"`` for a near miss, else the empty string."""
    lowered = {k.lower(): k for k in known}
    match = lowered.get(word.lower()) or next(
        iter(difflib.get_close_matches(word, known, n=1, cutoff=0.6)), None)
    return f"; did you mean '{match}'?" if match else ""


class Checker:
    """Walks the parsed TOML with the key specs below, raising ConfigError with a line."""

    def __init__(self, path: Path | None, lines: dict[KeyPath, int], env: dict[str, str],
                 base_dir: Path):
        self.path, self.lines, self.env, self.base_dir = path, lines, env, base_dir

    def fail(self, key: KeyPath, message: str) -> ConfigError:
        return ConfigError(f"{location(self.path, line_of(self.lines, key))}: '{dotted(key)}' "
                           f"{message}")

    def expect(self, key: KeyPath, value: Any, wanted: str) -> ConfigError:
        return self.fail(key, f"must be {wanted}; found {_describe(value)}.")

    def table(self, key: KeyPath, value: Any, spec: dict[str, Callable]) -> dict[str, Any]:
        """Check a TOML table against ``spec`` (key -> checker); return the checked values."""
        if not isinstance(value, dict):
            raise self.expect(key, value, f"a table (keys: {', '.join(spec)})")
        out = {}
        for name, item in value.items():
            if name not in spec:
                where = f" in [{dotted(key)}]" if key else ""
                hint = suggestion(name, list(spec))
                raise ConfigError(
                    f"{location(self.path, line_of(self.lines, (*key, name)))}: unknown key "
                    f"'{name}'{where}{hint}{' ' if hint else '. '}Known keys: "
                    f"{', '.join(spec)}.")
            out[name] = spec[name](self, (*key, name), item)
        return out


# ------------------------------------------------------------------------------ value checks
def _string(checker: Checker, key: KeyPath, value: Any) -> str:
    if not isinstance(value, str):
        raise checker.expect(key, value, "a string")

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in checker.env:
            raise checker.fail(key, f"uses the environment variable ${{{name}}}, which is not "
                                    f"set; export {name} before running the job.")
        return checker.env[name]

    return _ENV.sub(substitute, value)


def _nonempty(checker: Checker, key: KeyPath, value: Any) -> str:
    text = _string(checker, key, value)
    if not text.strip():
        raise checker.fail(key, "must not be empty.")
    return text


def _database(checker: Checker, key: KeyPath, value: Any) -> str:
    """A URL, or a SQLite file path; relative SQLite paths resolved against the job's folder."""
    text = _nonempty(checker, key, value)
    if "://" not in text:
        return f"sqlite:///{(checker.base_dir / text).resolve()}"
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        shown = "<hidden: it contains a password>" if "@" in text else repr(text)
        raise checker.fail(key, f"is not a database URL ({shown}); expected dialect+driver://"
                                "user@host/database or the path of a SQLite file.") from None
    try:
        url.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise checker.fail(key, f"names the unknown database kind '{url.drivername}'; expected "
                                "e.g. postgresql+psycopg, mysql+pymysql or sqlite.") from None
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:") and not Path(database).is_absolute():
        url = url.set(database=str((checker.base_dir / database).resolve()))
    return url.render_as_string(hide_password=False)


def _file(checker: Checker, key: KeyPath, value: Any) -> Path:
    return (checker.base_dir / _nonempty(checker, key, value)).resolve()


def _boolean(checker: Checker, key: KeyPath, value: Any) -> bool:
    if not isinstance(value, bool):
        raise checker.expect(key, value, "true or false")
    return value


def _positive(checker: Checker, key: KeyPath, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise checker.expect(key, value, "a positive number such as 0.5 or 2")
    return float(value)


def _seed(checker: Checker, key: KeyPath, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise checker.expect(key, value, "an integer >= 0")
    return value


def _max_rows(checker: Checker, key: KeyPath, value: Any) -> int | dict[str, int]:
    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if count(value):
        return value
    if isinstance(value, dict) and value and all(count(v) for v in value.values()):
        return dict(value)
    raise checker.expect(key, value, "a positive integer such as 200000, or a table of them "
                                     "such as { Invoice = 5000 }")


def _ceiling(checker: Checker, key: KeyPath, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise checker.expect(key, value, "an integer >= 0 such as 500000000 (0: no ceiling)")
    return value or None


def _cluster(checker: Checker, key: KeyPath, value: Any) -> int | str:
    """A Dask scheduler address, or a number of worker processes on this machine."""
    if isinstance(value, str) and value.strip() and (
            "://" in value or re.fullmatch(r"[\w.\-]+:\d+", value.strip())):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise checker.expect(key, value, 'a Dask scheduler address such as "tcp://host:8786", or a '
                                     "number of local workers such as 2")


def _names(checker: Checker, key: KeyPath, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise checker.expect(key, value, 'a list of table names such as ["Customer"]')
    return [_nonempty(checker, key, v) for v in value]


def _rule_labels(checker: Checker, key: KeyPath, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise checker.expect(key, value, 'a list of found rules such as '
                                         '["Track: Bytes > Milliseconds"]')
    return [_nonempty(checker, key, v) for v in value]


def _locales(checker: Checker, key: KeyPath, value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise checker.expect(key, value, 'a list of Faker locales such as ["en_US", "fr_CA"]')
    for locale in values:
        if locale not in AVAILABLE_LOCALES:
            raise checker.fail(key, f"names the unknown locale '{locale}'"
                                    f"{suggestion(locale, AVAILABLE_LOCALES)}")
    return list(values)


def _choice(options: tuple[str, ...]) -> Callable:
    def check(checker: Checker, key: KeyPath, value: Any) -> str:
        text = _string(checker, key, value)
        if text not in options:
            raise checker.fail(key, f"must be one of {', '.join(options)}; found {text!r}"
                                    f"{suggestion(text, list(options))}")
        return text
    return check


def _distribution(checker: Checker, key: KeyPath, value: Any) -> str:
    text = _string(checker, key, value)
    if text in NON_PARAMETRIC:
        raise checker.fail(key, f"cannot be '{text}': a non-parametric distribution has "
                                "no fixed parameters for the hierarchical model to learn; choose "
                                f"one of {', '.join(DISTRIBUTIONS)}.")
    return _choice(DISTRIBUTIONS)(checker, key, text)


def _distributions(checker: Checker, key: KeyPath, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise checker.expect(key, value, 'a table of column = distribution, e.g. { Total = "gamma" }')
    return {column: _distribution(checker, (*key, column), v) for column, v in value.items()}


def _duration(checker: Checker, key: KeyPath, value: Any) -> timedelta:
    text = _string(checker, key, value).replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise checker.expect(key, value, 'a duration such as "7d", "12h", "30m" or "1d12h"')
    return timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def _sdtype(checker: Checker, key: KeyPath, value: Any) -> str:
    text = _string(checker, key, value)
    if text not in BASIC_SDTYPES and not is_faker_provider(text):
        raise checker.fail(key, f"names the unknown sdtype '{text}'"
                                f"{suggestion(text, list(BASIC_SDTYPES))}; expected one of "
                                f"{', '.join(BASIC_SDTYPES)} or a Faker provider such as 'email'.")
    return text


def _provider(checker: Checker, key: KeyPath, value: Any) -> str:
    text = _string(checker, key, value)
    if not is_faker_provider(text):
        raise checker.fail(key, f"names '{text}', which is not a Faker provider; expected a "
                                "provider method such as 'email', 'name', 'phone_number' or "
                                "'company'.")
    return text


def _report(checker: Checker, key: KeyPath, value: Any) -> Path:
    path = _file(checker, key, value)
    if path.suffix.lower() not in (".html", ".json"):
        raise checker.fail(key, f"must name an .html or a .json file; found '{path.name}'.")
    return path


def _table_scale(checker: Checker, key: KeyPath, value: Any) -> None:
    # HMASynthesizer.sample takes one scale for every table: the child counts of a table follow
    # from its parents' sampled rows, so one table cannot be scaled alone without breaking them.
    raise checker.fail(key, "is not supported yet: every table is sampled at the job's scale "
                            "(the top-level 'scale' key), because a table's row count follows "
                            "from its parents' rows. Remove the key or set the global scale.")


_SCHEMA = {"source": _nonempty, "target": _nonempty}
_MODEL = {"path": _file, "max_age": _duration, "trust_pickle": _boolean}
def _column_policy(checker: Checker, key: KeyPath, value: Any) -> str:
    try:
        parse_policy(value, f"'{key[-2]}'")
    except MetadataError as exc:
        raise checker.fail(key, str(exc).split(": ", 1)[-1]) from exc
    return value


def _table_policy(checker: Checker, key: KeyPath, value: Any) -> str:
    if value not in TABLE_POLICIES:
        raise checker.expect(key, value, f"one of {', '.join(TABLE_POLICIES)}")
    return value


def _where(checker: Checker, key: KeyPath, value: Any) -> str:
    try:
        return check_where(value, key[-2])
    except MetadataError as exc:
        raise checker.fail(key, str(exc).split(": ", 1)[-1]) from exc


_COLUMN = {"sdtype": _sdtype, "provider": _provider, "categorical": _boolean,
           "policy": _column_policy}
_TABLE = {"default_distribution": _distribution, "numerical_distributions": _distributions,
          "enforce_min_max_values": _boolean, "enforce_rounding": _boolean, "locales": _locales,
          "scale": _table_scale, "policy": _table_policy, "where": _where}


def _each(spec: dict[str, Callable], what: str) -> Callable:
    """A table whose keys are names chosen by the user (tables, columns), each checked by spec."""
    def check(checker: Checker, key: KeyPath, value: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(value, dict):
            raise checker.expect(key, value, f"a table of {what}")
        return {name: checker.table((*key, name), item, spec) for name, item in value.items()}
    return check


def _section(spec: dict[str, Callable]) -> Callable:
    """A table with fixed keys, such as [schema] or [model]."""
    return lambda checker, key, value: checker.table(key, value, spec)


# Every key a job file may have, with its check (see hma_db.job_file for what each means).
TOP = {"source": _database, "target": _database, "schema": _section(_SCHEMA),
       "include": _names, "exclude": _names, "columns": _each(_COLUMN, '"table.column" entries'),
       "tables": _each(_TABLE, "table names"), "locales": _locales, "scale": _positive,
       "seed": _seed, "if_exists": _choice(IF_EXISTS), "model": _section(_MODEL),
       "report": _report, "max_rows": _max_rows, "fire_triggers": _boolean,
       "drop_cut_keys": _boolean, "max_total_rows": _ceiling, "reference_tables": _boolean,
       "cluster": _cluster, "find_rules": _boolean, "skip_rules": _rule_labels}
