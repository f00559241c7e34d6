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

import importlib.util
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema import from_json, guess_from_name, to_json
from hma_db.transform import personal

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


@lru_cache(maxsize=1)
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
          locales: tuple[str, ...], rng: np.random.Generator, where: str = "",
          names: np.ndarray | None = None) -> None:
    """Make a row's personal values agree with each other, in place (see above);
    ``locale_of_row`` is the locale of its address parts, ``names`` of its names (default the
    same)."""
    titles = next((s["genders"] for c, s in specs.items() if s.get("genders") and c in values),
                  None)
    title_values = next((values[c] for c, s in specs.items() if s.get("genders") and c in values),
                        None)
    named_state = next((c for c, s in specs.items() if s["role"] != "personal" and c in values
                        and guess_from_name(c) == "state"), None)  # 'WA' from the model
    specs = {c: s for c, s in specs.items() if s["role"] == "personal" and s.get("in_row")
             and not s.get("unique") and not s.get("locale") and c in values}
    if not specs:
        return
    if titles is not None:  # 'Mrs.' with a woman's first name (a model of this version)
        _gendered_names(values, specs, _genders_of(title_values, titles),
                        locale_of_row if names is None else names, locales, rng, where)
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
        elif locale == "en_US" and named_state and not state and postcode and (specs[postcode].get(
                "max_length") or 5) >= 5:
            _postcodes_in_states(values, postcode, named_state, rows, rng)
        if email:
            _name_emails(values, specs, email, rows)


def _postcodes_in_states(values: dict[str, Any], postcode: str, state: str, rows: np.ndarray,
                         rng: np.random.Generator) -> None:
    """Postcodes of en_US rows drawn in the range of the row's state, a value of the source
    ('WA' or 'Washington'); rows whose state is no US state keep theirs."""
    abbrs, names, ranges = _us_states()
    index = {v.lower(): i for i, v in enumerate(abbrs)} | {v.lower(): i for i, v in
                                                           enumerate(names)}
    codes, distinct = pd.factorize(pd.Series(values[state][rows], dtype=object))
    pick = np.array([index.get(str(v).strip().lower(), -1) for v in distinct] + [-1],
                    dtype=np.int64)[codes]
    known = rows[pick >= 0]
    if len(known):
        pick = pick[pick >= 0]
        made = rng.integers(ranges[pick, 0], ranges[pick, 1] + 1)
        _set(values, postcode, known, np.char.zfill(made.astype(str), 5).astype(object))


@lru_cache(maxsize=128)
def _locale_country(locale: str, provider: str) -> str:
    from faker import Faker

    fake = Faker(locale)  # made once per locale: a Faker takes ~5 ms to build
    return fake.current_country_code() if provider == "country_code" else fake.current_country()


def _set(values: dict[str, Any], column: str, rows: np.ndarray, made: Any) -> None:
    """``made`` into the rows that hold a value (a null stays null)."""
    out = np.asarray(values[column], dtype=object).copy()
    present = pd.notna(out[rows])
    out[rows[present]] = made[present] if isinstance(made, np.ndarray) else made
    values[column] = out


# ------------------------------------------------------------ the row's locale from its country
# A country column that repeats is a closed vocabulary, modeled like any category; the row's
# other address parts then come from the Faker locale of that country (a German row gets a
# German city, street, postcode and phone number), else from the synthesizer's locales. Names
# come from the country's locale when it is one of the synthesizer's (the user chose them),
# else from the synthesizer's. Country names and ISO codes come from Faker's list of
# countries; these are the usual others.
ADDRESS_PROVIDERS = {"street_address", "address", "street_name", "building_number",
                     "secondary_address", "city", "state", "state_abbr", "administrative_unit",
                     "region", "postcode", "zipcode", "phone_number", "msisdn"}
_COUNTRY_ALIASES = {"usa": "US", "us": "US", "u.s.": "US", "u.s.a.": "US", "america": "US",
                    "united states of america": "US", "uk": "GB", "u.k.": "GB",
                    "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
                    "wales": "GB", "ireland": "IE", "netherlands": "NL", "the netherlands": "NL",
                    "holland": "NL", "korea": "KR", "deutschland": "DE", "brasil": "BR"}


@lru_cache(maxsize=1)
def _country_codes() -> dict[str, str]:
    """Lower-case country names and 2- and 3-letter ISO codes -> the 2-letter code."""
    from faker.providers.date_time import Provider

    codes = {}
    for country in Provider.countries:
        short = re.sub(r"^(republic|kingdom) of (the )?", "", country.name.lower())
        for name in (country.name.lower(), short, country.alpha_2_code.lower(),
                     country.alpha_3_code.lower()):
            codes.setdefault(name, country.alpha_2_code)
    return codes | _COUNTRY_ALIASES


@lru_cache(maxsize=16)
def _locale_of_code(preferred: tuple[str, ...]) -> dict[str, str]:
    """ISO 2-letter code -> the Faker locale of that country: one of the synthesizer's
    locales first, then an English one (en_CA for Canada, en_IN for India), then Faker's; a
    locale with addresses of its own before one that inherits en_US's (Belgium: nl_BE, not
    fr_BE, whose addresses are "549 Pauwels Estates Suite 311, Jessyland")."""
    from faker.config import AVAILABLE_LOCALES

    fakers = sorted(AVAILABLE_LOCALES, key=lambda loc: not loc.startswith("en_"))
    order = [*preferred, *sorted(fakers, key=lambda loc: not _own_addresses(loc))]  # stable
    found: dict[str, str] = {}
    for locale in order:
        if "_" in locale:
            found.setdefault(locale.split("_", 1)[1].upper(), locale)
    return found


def _own_addresses(locale: str) -> bool:
    """Does Faker have an address provider written for ``locale`` (a module lookup, no import)?"""
    return locale == "en_US" or importlib.util.find_spec(
        f"faker.providers.address.{locale}") is not None


def locale_of_country(value: Any, preferred: tuple[str, ...] = ()) -> str | None:
    """The Faker locale of a country name or code ('Germany', 'DEU', 'USA' -> de_DE, en_US)."""
    if not isinstance(value, str):
        return None
    code = _country_codes().get(value.strip().lower())
    return _locale_of_code(tuple(preferred)).get(code) if code else None


def _emitted(spec: dict[str, Any]) -> list[Any]:
    """The values (JSON form) a column's spec can emit."""
    found = list(spec.get("categories") or []) + list(spec.get("values") or [])
    found += [b for _, b in spec.get("mapping") or []]
    return found + ([spec["value"]] if spec.get("role") == "constant" else [])


def is_address(provider: str) -> bool:
    """Whether a provider makes a part of an address (its row's country's locale makes it)."""
    return provider in ADDRESS_PROVIDERS


def mark_country(specs: dict[str, dict[str, Any]], locales: tuple[str, ...]) -> None:
    """Give the first country column that is not personal data (a closed vocabulary) the
    locale of each value it emits (``row_locales``), in place; a model of an earlier version
    has none and samples as it did."""
    for column, spec in specs.items():
        if spec["role"] in ("personal", "primary_key", "foreign_key", "key") or \
                guess_from_name(column) != "country":
            continue
        pairs = [[v, locale_of_country(from_json(v), locales)] for v in _emitted(spec)]
        pairs = [p for p in pairs if p[1] is not None]
        if pairs:
            spec["row_locales"] = pairs
            return


def country_column(specs: dict[str, dict[str, Any]]) -> str | None:
    return next((c for c, s in specs.items() if s.get("row_locales")), None)


def locales_of_rows(countries: np.ndarray, spec: dict[str, Any], locales: tuple[str, ...],
                    locale_of_row: np.ndarray
                    ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The locales (the synthesizer's, then the countries', always the same for one model, so
    unique columns number the same pools in every chunk), each row's locale of address parts
    (its country's, else the one drawn from the synthesizer's, ``locale_of_row``) and of names
    (its country's when the synthesizer has that locale, else the drawn one)."""
    extra = [loc for loc in dict.fromkeys(p[1] for p in spec["row_locales"]) if loc not in locales]
    every = (*locales, *extra)
    index = {json_key(v): every.index(loc) for v, loc in spec["row_locales"]}
    codes, distinct = pd.factorize(pd.Series(countries, dtype=object), use_na_sentinel=True)
    found = np.array([index.get(json_key(to_json(v)), -1) for v in distinct] + [-1],
                     dtype=np.int64)[codes]
    names = np.where((found >= 0) & (found < len(locales)), found, locale_of_row)
    return every, np.where(found >= 0, found, locale_of_row), names


# ------------------------------------------------------------ a first name that fits the title
_FEMALE = {"ms", "mrs", "miss", "mme", "mlle", "madam", "madame", "frau", "sra", "srta",
           "signora", "dona", "lady", "mevrouw", "mevr", "pani"}
_MALE = {"mr", "mister", "m", "monsieur", "herr", "hr", "sr", "signor", "sig", "don", "sir",
         "lord", "meneer", "dhr", "pan"}
_NEUTRAL = {"dr", "prof", "mx", "rev", "fr", "hon", "capt", "col", "sgt"}


def _title_key(value: Any) -> str:
    return re.sub(r"[.\s]", "", str(value)).lower()


def mark_titles(specs: dict[str, dict[str, Any]]) -> None:
    """Give a column of courtesy titles ('Ms.', 'Mr.', 'Dr.') the gender of each of its
    values (``genders``), when the table has a first name or a full name to make agree."""
    if not any(s["role"] == "personal" and s.get("provider") in ("first_name", "name")
               for s in specs.values()):
        return
    for spec in specs.values():
        if spec["role"] in ("personal", "primary_key", "foreign_key", "key"):
            continue
        values = [from_json(v) for v in _emitted(spec)]
        keys = [_title_key(v) for v in values if isinstance(v, str)]
        if not keys or len(keys) < len(values) or \
                not set(keys) <= _FEMALE | _MALE | _NEUTRAL:
            continue
        genders = [[to_json(v), "female" if k in _FEMALE else "male"]
                   for v, k in zip(values, keys, strict=True) if k in _FEMALE | _MALE]
        if genders:
            spec["genders"] = genders
            return


def _genders_of(titles: np.ndarray, genders: list[list[Any]]) -> np.ndarray:
    """Each row's gender ('female', 'male' or '') from its title."""
    lookup = {json_key(v): g for v, g in genders}
    codes, distinct = pd.factorize(pd.Series(titles, dtype=object), use_na_sentinel=True)
    return np.array([lookup.get(json_key(to_json(v)), "") for v in distinct] + [""],
                    dtype=object)[codes]


def _gendered_names(values: dict[str, Any], specs: dict[str, dict[str, Any]],
                    gender: np.ndarray, locale_of_row: np.ndarray, locales: tuple[str, ...],
                    rng: np.random.Generator, where: str) -> None:
    """First names (or full names) of the gender of each row's title, from the row's locale:
    one Faker pool per locale and gender, never a call per row."""
    for column, spec in specs.items():
        if spec["provider"] not in ("first_name", "name"):
            continue
        for sex in ("female", "male"):
            rows = np.flatnonzero((gender == sex) & pd.notna(np.asarray(values[column],
                                                                        dtype=object)))
            if len(rows):
                made = personal.generate({**spec, "provider": f"{spec['provider']}_{sex}"},
                                         np.asarray(locale_of_row)[rows], rng, locales,
                                         f"'{where}.{column}'")
                _set(values, column, rows, np.asarray(made, dtype=object))
