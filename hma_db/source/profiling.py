"""A cheap look at the data of reflected tables: what the schema alone cannot say.

For each table, one ``LIMIT`` query reads a small sample of the columns that need it, and (on tables
up to :data:`EXACT_DISTINCT_MAX_ROWS` rows) one query counts their distinct and non-null values.
From these:

- text columns become personal data (a Faker provider sdtype with ``pii``), categorical (a small
  domain whose values repeat) or generated text;
- string primary keys get a ``regex_format`` learned from the sample (``[A-Z]{5}`` for Northwind's
  customer ids) or ``generator: 'uuid'`` when they hold UUIDs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pandas as pd
import sqlalchemy as sa

from hma_db.schema import DATE_PII, guess_from_name, guess_from_values
from hma_db.source.read import readable

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 1000  # rows read per table for the value checks
PII_SAMPLE = 200  # values handed to guess_from_values
EXACT_DISTINCT_MAX_ROWS = 200_000  # above this, distinct counts come from the sample only
CATEGORICAL_MAX = 100  # a categorical column has at most this many distinct values
CATEGORY_MIN_MEAN = 5  # ... and each value appears this many times on average
# Personal data is decided by meaning, not by variety: a column named like personal data (a
# city, a street, a name) is generated whatever its number of distinct values, so a city that
# is always 'Realcityville' is never copied into the model. Regions are the exception: a state
# or a country is shared by millions of people, so one that repeats is a plain category (the
# country of an orders table), and personal data only when it does not repeat (a country
# repeated VOCABULARY_MIN_MEAN times on average is already a category: Chinook's customers).
WEAK_PII = {"state", "country"}
# A closed vocabulary (job titles, forms of address, Yes/Maybe/No) too small to be categorical:
# at most max(VOCABULARY_MAX, sqrt(rows)) values, each seen VOCABULARY_MIN_MEAN times on average.
# Its generator is left out, so that the transformer draws it from the values that repeat
# instead of making words (the same rule as hma_db.transform.encoders.is_closed_vocabulary,
# which source/ cannot import). Measured: Chinook Employee.Title 8 rows / 5 values = 1.60,
# Northwind title_of_courtesy 9 / 4 = 2.25; free text 1.00 (Album.Title) to 1.10
# (products.quantity_per_unit).
VOCABULARY_MAX = 20
VOCABULARY_MIN_MEAN = 1.5
# ... or up to VOCABULARY_LARGE values each seen VOCABULARY_LARGE_MEAN times on average (TPC-H's
# part.p_type: 150 values over 10,000 parts; orders.o_clerk: 1,000 over 75,000 orders).
VOCABULARY_LARGE = 1_000
VOCABULARY_LARGE_MEAN = 20
_SHORT_FORMS = {"state": "state_abbr", "country": "country_code"}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CLASSES = {"A": ("[A-Z]", 26), "a": ("[a-z]", 26), "9": (r"\d", 10)}


def sample(conn: sa.Connection, table: sa.Table, columns: list[str],
           rows: int, counts: bool = True) -> tuple[pd.DataFrame, dict[str, tuple[int, int]]]:
    """Sample values of ``columns`` and their (distinct, non-null) counts.

    The counts are exact on tables up to :data:`EXACT_DISTINCT_MAX_ROWS` rows and taken from the
    sample above that, so a large table costs one bounded query (on PostgreSQL a TABLESAMPLE of
    random pages; elsewhere the first rows). ``counts=False``: the sample only (no counts).
    """
    if not columns or rows == 0:
        return pd.DataFrame(columns=columns), dict.fromkeys(columns, (0, 0))
    source = table
    if rows > EXACT_DISTINCT_MAX_ROWS and conn.dialect.name == "postgresql":
        # Random pages instead of the first rows, which may all be alike (old, archived...).
        percent = min(100.0, 100.0 * 3 * SAMPLE_ROWS / rows)
        source = sa.tablesample(table, sa.func.system(percent))
    cols = [readable(source.c[c]) for c in columns]
    result = conn.execute(sa.select(*cols).limit(SAMPLE_ROWS)).fetchall()
    frame = pd.DataFrame([tuple(r) for r in result], columns=columns, dtype="object")
    if not counts:
        return frame, {}
    if rows <= EXACT_DISTINCT_MAX_ROWS:
        exprs = [f(c) for c in cols for f in (lambda c: sa.func.count(sa.distinct(c)), sa.func.count)]
        counts = list(conn.execute(sa.select(*exprs)).one())
        stats = {c: (int(counts[2 * i]), int(counts[2 * i + 1])) for i, c in enumerate(columns)}
    else:
        stats = {c: (int(frame[c].nunique()), int(frame[c].notna().sum())) for c in columns}
    return frame, stats


def _fit_length(provider: str, max_length: int | None) -> str:
    if max_length is not None and max_length <= 3 and provider in _SHORT_FORMS:
        return _SHORT_FORMS[provider]
    return provider


def text_options(name: str, options: dict[str, Any], values: pd.Series,
                 distinct: int, non_null: int) -> dict[str, Any]:
    """Options of a text column: personal data, categorical or generated text.

    Personal-data names (email, names, phone, city...) win whatever the number of distinct
    values, then values that look like emails, phones, IPs or URLs; otherwise a column whose few
    values repeat is categorical; otherwise a region name (state, country) makes personal data;
    otherwise the column is generated text within its length, or, when its few values repeat,
    drawn from them (no ``generator``: see :data:`VOCABULARY_MIN_MEAN`).
    """
    kept = {k: options[k] for k in ("nullable", "max_length") if k in options}
    provider = guess_from_name(name)
    if provider in DATE_PII:
        provider = None
    if provider and provider not in WEAK_PII:
        return {"sdtype": provider, "pii": True, **kept}
    # Values that look like emails or phone numbers are personal even when they repeat.
    by_value = None if provider else guess_from_values(values.dropna().head(PII_SAMPLE))
    if by_value:
        return {"sdtype": by_value, "pii": True, **kept}
    if non_null and distinct <= CATEGORICAL_MAX and non_null >= CATEGORY_MIN_MEAN * distinct:
        return {"sdtype": "categorical", **kept}
    if provider == "country" and 2 <= distinct <= CATEGORICAL_MAX and \
            non_null >= VOCABULARY_MIN_MEAN * distinct:
        # Countries that repeat are a closed vocabulary: their values are kept (a German row
        # then gets a German address), where one locale would make them all 'United States'.
        return {"sdtype": "categorical", **kept}
    if provider:
        return {"sdtype": _fit_length(provider, kept.get("max_length")), "pii": True, **kept}
    few = distinct <= max(VOCABULARY_MAX, non_null ** 0.5) and \
        non_null >= VOCABULARY_MIN_MEAN * distinct
    many = distinct <= VOCABULARY_LARGE and non_null >= VOCABULARY_LARGE_MEAN * distinct
    if distinct >= 2 and (few or many) and options.get("generator") == "text":
        return {k: v for k, v in options.items() if k != "generator"}
    return options


# A text column not named like personal data whose sampled values are mostly the values of a
# personal-data column (Northwind orders.ship_name: 86 of its 89 names are customers'
# company_name) holds that personal data too: it takes that column's provider. At least
# OVERLAP_MIN distinct values must be shared, so one value in common ('AB') is no finding.
OVERLAP_SHARE = 0.5
OVERLAP_MIN = 3


def personal_by_overlap(samples: dict[str, pd.DataFrame],
                        tables: dict[str, dict[str, Any]]) -> dict[tuple[str, str], str]:
    """``{(table, column): provider}`` for the text columns not marked personal (categorical
    or generated, without a list of allowed values) whose distinct sampled values are at least
    :data:`OVERLAP_SHARE` values of one personal-data column of the database (any table).

    One index from each sampled personal value to its columns, then one pass over each
    candidate's distinct values: the cost is the number of distinct sampled values.
    """
    owners: dict[str, set[tuple[str, str]]] = {}
    for table, frame in samples.items():
        for column in frame.columns:
            spec = tables[table]["columns"].get(column, {})
            if spec.get("pii") and spec.get("sdtype") not in DATE_PII:
                for value in pd.unique(frame[column].dropna().astype(str)):
                    owners.setdefault(value, set()).add((table, column))
    found: dict[tuple[str, str], str] = {}
    for table, frame in samples.items():
        for column in frame.columns:
            spec = tables[table]["columns"].get(column, {})
            if spec.get("pii") or spec.get("allowed_values") or spec.get("sdtype") not in (
                    "categorical", "unknown") or spec.get("generator") not in (None, "text"):
                continue
            values = pd.unique(frame[column].dropna().astype(str))
            hits: dict[tuple[str, str], int] = {}
            for value in values:
                for owner in owners.get(value, ()):
                    if owner != (table, column):
                        hits[owner] = hits.get(owner, 0) + 1
            best = max(hits.items(), key=lambda kv: (kv[1], kv[0]), default=None)
            if best and best[1] >= OVERLAP_MIN and best[1] >= OVERLAP_SHARE * len(values):
                owner = best[0]
                found[(table, column)] = tables[owner[0]]["columns"][owner[1]]["sdtype"]
    return found


def date_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A date column named like a birth date is personal data (``date_of_birth``)."""
    provider = guess_from_name(name)
    if provider in DATE_PII:
        return {"sdtype": provider, "pii": True, "nullable": options["nullable"]}
    return options


def _runs(value: str) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for char in value:
        cls = "A" if "A" <= char <= "Z" else "a" if "a" <= char <= "z" else \
            "9" if "0" <= char <= "9" else char
        if runs and runs[-1][0] == cls:
            runs[-1] = (cls, runs[-1][1] + 1)
        else:
            runs.append((cls, 1))
    return runs


def learn_key_format(values: pd.Series, rows: int) -> dict[str, Any]:
    """``regex_format`` (or ``generator: 'uuid'``) for a string key, learned from sample values.

    Only simple shapes are learned: every value must be the same sequence of runs of upper-case
    letters, lower-case letters, digits and fixed characters (lengths may vary per run), and the
    pattern must allow at least ten times ``rows`` distinct values. Returns {} otherwise.

    Example:
        >>> learn_key_format(pd.Series(["ALFKI", "ANATR", "BONAP"]), 91)
        {'regex_format': '[A-Z]{5}'}
    """
    text = values.dropna()
    if text.empty or not all(isinstance(v, str) for v in text):
        return {}
    if text.map(lambda v: bool(_UUID.match(v))).all():
        return {"generator": "uuid"}
    shapes = [_runs(v) for v in text]
    signature = [cls for cls, _ in shapes[0]]
    if len(signature) > 8 or any([cls for cls, _ in s] != signature for s in shapes):
        return {}
    parts, capacity = [], 1.0
    for i, cls in enumerate(signature):
        lengths = [s[i][1] for s in shapes]
        low, high = min(lengths), max(lengths)
        pattern, size = _CLASSES.get(cls, (re.escape(cls), 1))
        parts.append(pattern + (f"{{{low}}}" if low == high else f"{{{low},{high}}}"))
        capacity *= float(size) ** high
    if capacity < 10 * max(rows, 1):
        return {}
    regex = "".join(parts).replace("{1}", "")
    return {"regex_format": regex}
