"""Functional dependencies between a table's categorical columns: a city determines its country.

A Gaussian copula cannot keep a many-to-one mapping between categories. It draws a city and a
country from correlated uniforms and pairs them almost at random within their frequency bands:
on Chinook, ``Invoice.BillingCity`` and ``BillingCountry`` came out with a contingency
similarity of 0.10 where every real city has one country. So when every value of a modeled
categorical column A comes with a single value of another, B, in the source, B is not modeled:
it is derived from A's sampled value through the mapping learned here.

The mapping keeps only A's frequent categories (the ones the model emits; rare ones are never
emitted), so B's values are as safe as A's: each comes with at least as many source rows as the
A value that maps to it, and nothing rare is stored in the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema import from_json, to_json

MAX_COLUMNS = 40  # a table's categorical columns checked pairwise, at most
MIN_ROWS = 20  # fewer rows than this say nothing reliable about a dependency
_SAMPLE_ROWS = 10_000  # pairs are screened on a sample, confirmed on every row


def candidates(specs: dict[str, dict[str, Any]]) -> list[str]:
    """The columns that may determine or be derived: modeled categories that are not numbers."""
    return [column for column, spec in specs.items()
            if spec.get("role") == "modeled" and spec.get("kind") == "categorical"
            and not spec.get("numeric") and len(spec.get("categories", [])) >= 2]


def find(frame: pd.DataFrame, columns: list[str], min_category_count: int) -> dict[str, str]:
    """``{derived column: the column that determines it}``.

    Columns are taken from the most distinct values to the fewest, so a city is kept and its
    state and country are derived from it, not from each other. A column determines another
    when each of its values (null counting as one) comes with one value of the other, and its
    values repeat (on average at least ``min_category_count`` rows each, so that a column of
    nearly unique values, which trivially determines everything, is never used).
    """
    if len(frame) < MIN_ROWS or not 2 <= len(columns) <= MAX_COLUMNS:
        return {}
    try:
        codes = {c: pd.factorize(frame[c], use_na_sentinel=False)[0] for c in columns}
    except TypeError:  # unhashable values (lists, dicts): no dependency is looked for
        return {}
    distinct = {c: int(codes[c].max()) + 1 for c in columns}
    sample = np.random.default_rng(0).permutation(len(frame))[:_SAMPLE_ROWS]
    kept: list[str] = []
    derived: dict[str, str] = {}
    for column in sorted(columns, key=lambda c: -distinct[c]):  # stable: ties keep order
        source = next((a for a in kept
                       if len(frame) >= distinct[a] * max(min_category_count, 2)
                       and _determines(codes[a][sample], codes[column][sample], distinct[column])
                       and _determines(codes[a], codes[column], distinct[column])), None)
        if source is None:
            kept.append(column)
        else:
            derived[column] = source
    return derived


def _determines(a: np.ndarray, b: np.ndarray, b_distinct: int) -> bool:
    """Whether each code of ``a`` comes with one code of ``b`` (one pass, vectorized)."""
    pairs = np.unique(a.astype(np.int64) * b_distinct + b)
    return len(pairs) == len(np.unique(pairs // b_distinct))


def learn(frame: pd.DataFrame, source: str, target: str,
          source_spec: dict[str, Any]) -> dict[str, Any]:
    """The spec of ``target`` derived from ``source``: the value of each category the model
    emits for ``source`` (its frequent categories, and null when the source has nulls)."""
    pairs = frame[[source, target]].drop_duplicates(subset=[source])
    emitted = {json_key(v) for v in source_spec["categories"]}
    mapping = [[to_json(a), to_json(None if _isnull(b) else b)]
               for a, b in zip(pairs[source], pairs[target], strict=True)
               if not _isnull(a) and json_key(to_json(a)) in emitted]
    nulls = pairs[pairs[source].isna()][target]
    null_value = None if nulls.empty or _isnull(nulls.iloc[0]) else to_json(nulls.iloc[0])
    return {"role": "derived", "kind": "categorical", "source": source, "mapping": mapping,
            "null_value": null_value}


def derive(source_values: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """The derived column's values for the sampled values of its source (object array).

    The rows are hashed once (``factorize``); only the few distinct values are looked up.
    """
    codes, distinct = pd.factorize(pd.Series(source_values, dtype=object), use_na_sentinel=True)
    lookup = {json_key(a): from_json(b) for a, b in spec["mapping"]}
    values = np.empty(len(distinct) + 1, dtype=object)
    values[:-1] = [lookup.get(json_key(to_json(v))) for v in distinct]
    values[-1] = from_json(spec["null_value"])  # code -1: a null source
    return values[codes]


def json_key(value: Any) -> str:
    """A hashable key for a JSON-form value (dicts of tagged values are not hashable)."""
    return repr(value)


def _isnull(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, tuple, np.ndarray, dict))
                             and bool(pd.isna(value)))


# ---------------------------------------------------------------- personal data of one row
# Personal data learned by this version agrees within a row (models of hma_db 0.1, whose specs
# lack 'in_row', sample as they did): the country is the row's locale's, an en_US state and
# postcode come from one state (Faker's states_postcode ranges), and the e-mail is made of the
# row's name, keeping the domain Faker drew.
_STATES = ("state", "state_abbr", "administrative_unit")
_POSTCODES = ("postcode", "zipcode")


def _by_provider(specs: dict[str, dict[str, Any]], names: tuple[str, ...]) -> str | None:
    return next((c for c, s in specs.items() if s["provider"] in names), None)


def _us_states() -> tuple[list[str], list[str], np.ndarray]:
    from faker import Faker

    address = next(p for p in Faker("en_US").providers if "address" in type(p).__module__)
    abbrs = [a for a in address.states_abbr if a in address.states_postcode and a != "DC"]
    names = dict(zip([a for a in address.states_abbr if a != "DC"], address.states, strict=True))
    return abbrs, [names[a] for a in abbrs], np.array([address.states_postcode[a] for a in abbrs])


def _name_emails(values: dict[str, Any], specs: dict[str, dict[str, Any]], email: str,
                 rows: np.ndarray) -> None:
    first, last = _by_provider(specs, ("first_name",)), _by_provider(specs, ("last_name",))
    full = _by_provider(specs, ("name",))
    if first and last:
        name = pd.Series(values[first][rows], dtype=object).astype(str) + "." + pd.Series(
            values[last][rows], dtype=object).astype(str)
    elif full:
        name = pd.Series(values[full][rows], dtype=object).astype(str).str.replace(" ", ".")
    else:
        return
    old = pd.Series(values[email][rows], dtype=object)
    local = (name.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
             .str.lower().str.replace(r"[^a-z0-9.]", "", regex=True).str.strip("."))
    made = local + "@" + old.astype(str).str.partition("@")[2]
    width = specs[email].get("max_length")
    fits = made.str.len() <= width if width else pd.Series(True, index=made.index)
    keep = (local.str.len() > 0) & fits & old.notna()
    out = np.asarray(values[email], dtype=object).copy()
    out[rows[keep.to_numpy()]] = made[keep].to_numpy(dtype=object)
    values[email] = out


def agree(values: dict[str, Any], specs: dict[str, dict[str, Any]], locale_of_row: np.ndarray,
          locales: tuple[str, ...], rng: np.random.Generator) -> None:
    """Make a row's personal values agree with each other, in place (see above)."""
    specs = {c: s for c, s in specs.items() if s["role"] == "personal" and s.get("in_row")
             and not s.get("unique") and not s.get("locale") and c in values}
    if not specs:
        return
    country = _by_provider(specs, ("country", "country_code"))
    state, postcode = _by_provider(specs, _STATES), _by_provider(specs, _POSTCODES)
    email = _by_provider(specs, ("email",))
    for i, locale in enumerate(locales):
        rows = np.flatnonzero(np.asarray(locale_of_row) == i)
        if not len(rows):
            continue
        if country:
            _set(values, country, rows, _locale_country(locale, specs[country]["provider"]))
        if locale == "en_US" and state and postcode and (specs[postcode].get(
                "max_length") or 5) >= 5:
            abbrs, names, ranges = _us_states()
            shown = np.array(abbrs if specs[state]["provider"] == "state_abbr" else names,
                             dtype=object)
            width = specs[state].get("max_length")
            fitting = np.flatnonzero([len(v) <= width for v in shown]) if width else \
                np.arange(len(shown))
            pick = fitting[rng.integers(len(fitting), size=len(rows))]
            codes = rng.integers(ranges[pick, 0], ranges[pick, 1] + 1)
            named = shown[pick]
            _set(values, state, rows, named)
            _set(values, postcode, rows, np.char.zfill(codes.astype(str), 5).astype(object))
        if email:
            _name_emails(values, specs, email, rows)


def _locale_country(locale: str, provider: str) -> str:
    from faker import Faker

    fake = Faker(locale)
    return fake.current_country_code() if provider == "country_code" else fake.current_country()


def _set(values: dict[str, Any], column: str, rows: np.ndarray, made: Any) -> None:
    """``made`` into the rows that hold a value (a null stays null)."""
    out = np.asarray(values[column], dtype=object).copy()
    present = pd.notna(out[rows])
    out[rows[present]] = made[present] if isinstance(made, np.ndarray) else made
    values[column] = out
