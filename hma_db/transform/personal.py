"""Personal data: values made by Faker with the synthesizer's locales, never copied.

Each row gets one locale (drawn from the synthesizer's ``locales``) that all its personal-data
columns share, so names, addresses and phone numbers of a row belong together.

A Faker call costs 10-150 microseconds, so a column of 100,000 rows is not made one call per
row: at most ``POOL_SIZE`` values per column are drawn from Faker (seeded from the caller's
generator, so output is repeatable) and the rows sample from that pool.

A column that must be unique is a *sequence*, like a key
(:mod:`hma_db.transform.keys.keygen`): the value at position ``i`` of a run is the pool's
distinct base ``i % D`` (in a seeded order), and from the second round on the base with the
number ``i // D + 1`` (``jane.doe@example.org`` -> ``jane.doe2@example.org``, ``Jane Doe`` ->
``Jane Doe 2``), cut to fit ``max_length``. Bases
that would make a suffixed value ambiguous (an email head ending in a digit, ``Ann 2`` beside
``Ann``) are left out, and the locales' pools are made disjoint, so distinct positions give
distinct values by construction: chunks of a run (positions that do not overlap) never repeat
a value, and memory is one pool per column whatever the size of the run.

A column too narrow for those numbers (``state_abbr`` in a ``varchar(2)``) takes Faker's
distinct values as they are when there are enough of them, else a keyed sequence of *codes* of
their shape and the column's width (``[A-Z]{2}``: 676 codes), made as key patterns are
(:func:`hma_db.transform.keys.keygen.pattern_strings`), so chunks still never repeat a value. Only a
column where no codes of its width are enough is refused (:func:`unique_room`), and the checks
before a run call that same function, so the refusal comes before any work.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import MetadataError, SamplingError
from hma_db.schema import faker_method, guess_from_name, is_faker_provider
from hma_db.transform.keys import keygen

POOL_SIZE = 5_000  # Faker calls per column and sample, at most (split between the locales)


# Rows take their country's locale, so a run uses one Faker per country (Chinook: 24) besides
# the user's locales; a Faker takes ~5 ms to build and ~1 MB.
@lru_cache(maxsize=128)
def faker_for(locales: tuple[str, ...]):
    """One (multi-locale) Faker per set of locales; seeded before each use.

    ``use_weighting=False`` draws names and words uniformly from Faker's lists instead of by
    their real-world frequency: 10 to 30 times faster (measured: ``last_name`` 18 us instead of
    550 us per value), and the values are no less plausible.
    """
    from faker import Faker

    fake = Faker(list(locales), use_weighting=False)
    if "it_IT" in locales:  # its cities are a list made from a set: an order per process
        for provider in fake["it_IT"].providers:
            if isinstance(getattr(provider, "cities", None), list):
                provider.cities = sorted(provider.cities)  # the same seed, the same city
    return fake


def provider_for(sdtype: str, column: str, where: str) -> str:
    """The Faker method for a personal-data column: its sdtype, else a guess from its name."""
    if is_faker_provider(sdtype):
        return faker_method(sdtype)
    guess = guess_from_name(column)
    if guess is not None:
        return guess
    if sdtype in ("categorical", "unknown", "text", "id"):
        return "pystr"
    raise MetadataError(f"Column {where}: sdtype '{sdtype}' marked as personal data is not a "
                        "Faker provider; set its sdtype to one, e.g. 'email' or 'name'.")


# Providers some locales lack, and what stands in for them there (fr_FR has no 'state').
_ALTERNATES = {"state": ("administrative_unit", "region"), "state_abbr": ("administrative_unit",),
               "zipcode": ("postcode",), "postcode": ("zipcode",),
               "administrative_unit": ("state", "region")}


@lru_cache(maxsize=256)
def resolve_provider(locales: tuple[str, ...], provider: str) -> tuple[tuple[str, ...], str]:
    """The locales and provider to use: the locales that have the provider; else a stand-in
    provider they have; else ``en_US``. A provider no locale has is an error."""
    fake = faker_for(locales)
    for name in (provider, *_ALTERNATES.get(provider, ())):
        having = tuple(loc for loc in locales if hasattr(fake[loc], name))
        if having:
            return having, name
    if hasattr(faker_for(("en_US",)), provider):
        return ("en_US",), provider
    raise AttributeError(provider)


def _call(locales: tuple[str, ...], provider: str, count: int, seed: int,
          where: str, plain: bool = False) -> list[Any]:
    try:
        locales, provider = resolve_provider(tuple(locales), provider)
        fake = faker_for(locales)
        fake.seed_instance(seed)
        # A multi-locale Faker picks the locale when the attribute is read: read it per call.
        values = [getattr(fake, provider)() for _ in range(count)]
    except (AttributeError, TypeError) as exc:
        raise MetadataError(f"Column {where}: Faker cannot generate '{provider}' for the "
                            f"locales {list(locales)}: {exc}") from exc
    if not plain:
        return values
    if provider.startswith("phone"):
        return [EXTENSION.sub("", v) for v in values]
    return without_titles(values, locales)


# A phone number's extension: Faker's en_US numbers end in one a third of the time
# ('(909)915-7212x01883'); a column whose real numbers never have one gets none.
EXTENSION = re.compile(r"\s*(x|ext\.?)\s*\d+$", re.IGNORECASE)


def has_extensions(series: pd.Series) -> bool:
    """Whether any real phone number of the column ends in an extension."""
    return bool(series.dropna().astype(str).str.contains(EXTENSION).any())


# Faker's person providers keep their courtesy titles and suffixes in these attributes.
_AFFIX_LISTS = ("prefixes", "prefixes_female", "prefixes_male", "prefixes_nonbinary",
                "suffixes", "suffixes_female", "suffixes_male", "suffixes_nonbinary")
# Locales whose titles are looked for in real names (the ones Faker's locales use most).
_TITLE_LOCALES = ("en_US", "en_GB", "de_DE", "pt_BR", "it_IT", "es_ES", "fr_FR")
# Names where at most this share carries a title ("Dr. Ann Lee", "Tom Ray Jr.") are plain:
# Faker's titles ("Mr. Drew Joyce PhD") would be a shape the column never has.
TITLED_SHARE = 0.01


@lru_cache(maxsize=64)
def titles(locales: tuple[str, ...]) -> frozenset[str]:
    """The courtesy titles and name suffixes of the locales' Faker (``Mr.``, ``Dr``, ``PhD``,
    ``Jr.``, ``Sra.``...); lower-case particles that belong to a surname (``de``, ``du``)
    and French ``Le`` are not titles."""
    found: set[str] = set()
    for locale in locales:
        for provider in faker_for((locale,)).get_providers():
            for name in _AFFIX_LISTS:
                found.update(str(t) for t in (getattr(provider, name, None) or ()))
    return frozenset(t for t in found if t[:1].isupper() and t != "Le")


def without_titles(values: list[Any], locales: tuple[str, ...]) -> list[Any]:
    """Names without a leading title or a trailing suffix (``Mr. Drew Joyce PhD`` ->
    ``Drew Joyce``); a pool of at most :data:`POOL_SIZE` values, not the rows."""
    known = titles(tuple(locales))
    out = []
    for value in values:
        if not isinstance(value, str):
            out.append(value)
            continue
        words = value.split(" ")
        while len(words) > 2 and words[0] in known:
            words = words[1:]
        while len(words) > 2 and words[-1] in known:
            words = words[:-1]
        out.append(" ".join(words))
    return out


def has_titles(values: pd.Series) -> bool:
    """Do more than :data:`TITLED_SHARE` of the real names start with a title or end with a
    suffix (in the commonest locales' lists)?"""
    names = values.dropna().astype(str)
    if not len(names):
        return False
    known = list(titles(_TITLE_LOCALES))
    long = names.str.count(" ") >= 2  # a title beside a first and a last name
    first = names.str.split(" ", n=1).str[0]
    last = names.str.rsplit(" ", n=1).str[-1]
    titled = long & (first.isin(known) | last.isin(known))
    return bool(titled.mean() > TITLED_SHARE)


def _as_text(values: list[Any], max_length: int | None) -> pd.Series:
    if all(isinstance(v, str) for v in values):
        values = [v.replace("\n", ", ") for v in values]
        if not max_length or max(map(len, values), default=0) <= max_length:
            return pd.Series(values, dtype=object)  # the usual case, without pandas' str ops
    out = pd.Series(values, dtype=object)
    if max_length and out.map(lambda v: isinstance(v, str)).all():
        # An email too long loses letters of its name, not of its domain.
        head, tail, email = _split(out)
        room = max_length - tail.str.len()
        fits = email & (room >= 1)
        out = out.str.slice(0, max_length).str.rstrip()
        out[fits] = _cut(head[fits], room[fits]) + tail[fits]
    return out


_MIN_POOL = 500  # Faker calls per locale at least, when several locales share POOL_SIZE


def _pool_size(locales: tuple[str, ...]) -> int:
    # The Faker budget is shared: POOL_SIZE calls per column whatever the locales.
    return max(POOL_SIZE // len(locales), min(_MIN_POOL, POOL_SIZE))


@lru_cache(maxsize=32)
def _faker_pool(locale: str, provider: str, size: int, seed: int, max_length: int | None,
                where: str) -> tuple[Any, ...]:
    """A locale's pool of a unique column: the same for every chunk of a run, so it is made
    once per run rather than once per chunk."""
    return tuple(_as_text(_call((locale,), provider, size, seed, where), max_length))


def _split(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(head, tail, is email): an email's suffix goes before its '@'."""
    email = values.str.contains("@", regex=False)
    parts = values.str.partition("@")
    return parts[0].where(email, values), ("@" + parts[2]).where(email, ""), email


def _cut(head: pd.Series, room: pd.Series) -> pd.Series:
    """Each head cut to its room: one vectorized slice per distinct room, not per row."""
    head = head.copy()
    for width in pd.unique(room):
        rows = (room == width).to_numpy()
        head[rows] = head[rows].str.slice(0, int(width)).str.rstrip()
    return head


def _suffix_shaped(head: pd.Series, tail: pd.Series, email: pd.Series) -> pd.Series:
    """Bases a suffixed value could be mistaken for, or that make suffixes ambiguous.

    A suffixed email is ``head + number + tail`` and a suffixed other value ``head + ' ' +
    number``. Email heads ending in a digit are dropped, so the digits ending a suffixed head are
    exactly its number; another value that reads as ``base + ' ' + number`` with ``base`` in the
    pool is dropped, so no unsuffixed value equals a suffixed one.
    """
    known = set(head + tail)
    parsed = head.str.extract(r"^(.*) [1-9][0-9]*$")[0]
    shaped = parsed.isin(known) & ~email
    return shaped | (email & head.str.contains(r"[0-9]$")) | (head.str.len() == 0)


def _provider_bases(provider: str, max_length: int | None, locales: tuple[str, ...],
                    seed: int, size: int, total: int,
                    where: str) -> list[tuple[np.ndarray, Any, Any]] | None:
    """Per locale, the (head, tail, is email) of its distinct bases, disjoint between locales,
    from pools of ``size`` Faker values; None when no base leaves room for the numbers.

    Bases are cut so that the longest suffix the run needs still fits ``max_length``.
    """
    seeds = np.random.SeedSequence(int(seed)).generate_state(2 * len(locales))
    values, labels = [], []
    for i, locale in enumerate(locales):
        pool = _faker_pool(locale, provider, size, int(seeds[i]) % 2**31, max_length, where)
        order = np.random.default_rng(int(seeds[len(locales) + i])).permutation(len(pool))
        values += [pool[j] for j in order]
        labels += [i] * len(pool)
    values = pd.Series(values, dtype=object)
    labels = np.asarray(labels, dtype=np.int64)
    keep = ~values.duplicated().to_numpy()  # a value both locales drew stays with the first
    values, labels = values[keep].reset_index(drop=True), labels[keep]
    counts = np.bincount(labels, minlength=len(locales))
    if counts.min() >= total:  # no suffix needed: the values as Faker made them
        return [(values[labels == i].to_numpy(dtype=object), None, None)
                for i in range(len(locales))]
    head0, tail, email = _split(values.astype(str))
    width = 0
    while True:
        head, roomy = head0, pd.Series(True, index=head0.index)
        if max_length:
            room = max_length - tail.str.len() - width - (~email).astype(int)
            roomy = room >= 1  # a base with no room left for the longest number is left out
            head = _cut(head0, room.clip(lower=0))
        full = head + tail
        kept = (roomy & ~full.duplicated() & ~_suffix_shaped(head, tail, email)).to_numpy()
        counts = np.bincount(labels[kept], minlength=len(locales))
        if counts.min() == 0:
            if max_length:
                return None
            raise SamplingError(f"Column {where}: Faker produced no value to build unique "
                                "ones from")
        needed = len(str((total - 1) // int(counts.min()) + 1))
        if needed <= width:
            break
        width = needed
    return [(head[kept & (labels == i)].to_numpy(dtype=object),
             tail[kept & (labels == i)].to_numpy(dtype=object),
             email[kept & (labels == i)].to_numpy(dtype=bool)) for i in range(len(locales))]


# The widest alphabet of codes: one case only, so that a case-insensitive collation (MariaDB's
# default) cannot see two codes as one value.
_CODE_CHARS = string.ascii_uppercase + string.digits


def code_room(max_length: int) -> int:
    """How many distinct codes of width ``max_length`` the widest code alphabet has."""
    return len(_CODE_CHARS) ** int(max_length)


def unique_room(max_length: int | None, total: int, where: str) -> str | None:
    """Why a unique personal-data column cannot get ``total`` distinct values that fit
    ``max_length``, in one line naming the column and what to do; None when it can.

    The generator (:func:`unique_generate`) and the checks before a run (``plan``, ``run``,
    ``clone``) both call this, so a plan that passes is a run whose values fit.
    """
    if not max_length or total <= code_room(max_length):
        return None
    room = code_room(max_length)
    return (f"Column {where}: {total:,} unique values are needed, but only {room:,} distinct "
            f"values fit max_length {max_length} (codes of upper-case letters and digits); lower "
            f"the scale so that the table gets at most {room:,} rows, or widen the column.")


@dataclass(frozen=True)
class _Codes:
    """A unique column's values as a keyed sequence of codes: one alphabet per character."""

    positions: tuple[str, ...]
    seed: int


def _fold_case(alphabet: str) -> str:
    """An alphabet with one letter case at most (upper case when it mixes both)."""
    if any(c.isupper() for c in alphabet) and any(c.islower() for c in alphabet):
        return "".join(dict.fromkeys(c.upper() for c in alphabet))
    return alphabet


def _code_shapes(values: pd.Series, max_length: int) -> list[list[str]]:
    """Code shapes from the narrowest to the widest: the shape of Faker's values (``AL``,
    ``CA`` -> two upper-case letters), then their characters at the column's full width,
    then upper-case letters and digits at the full width."""
    text = values.dropna().astype(str).str.slice(0, max_length)
    text = text[text.str.len() > 0]
    shapes = []
    pattern = keygen.learn_pattern(text, min_count=1) if len(text) else None
    if pattern is not None:
        shapes.append([_fold_case(a) for a in keygen.parse_pattern(pattern, "")])
    seen = "".join(sorted(set("".join(text.tolist())) & set(string.ascii_letters + string.digits)))
    if seen:
        shapes.append([_fold_case(seen)] * max_length)
    shapes.append([_CODE_CHARS] * max_length)
    return shapes


def _codes(provider: str, max_length: int, locales: tuple[str, ...], seed: int, total: int,
           where: str) -> _Codes:
    """The narrowest code shape with room for ``total`` values (see :func:`unique_room`)."""
    problem = unique_room(max_length, total, where)
    if problem is not None:
        raise SamplingError(problem)
    sample = _faker_pool(locales[0], provider, min(_pool_size(locales), 1_000), int(seed) % 2**31,
                         max_length, where)
    for shape in _code_shapes(pd.Series(sample, dtype=object), max_length):
        if math.prod(len(a) for a in shape) >= total:
            code_seed = int(np.random.SeedSequence([int(seed), 2]).generate_state(1, np.uint64)[0]
                            >> 1)
            return _Codes(tuple(shape), code_seed)
    raise SamplingError(unique_room(max_length, total, where) or where)  # not reached


def _unique_bases(provider: str, max_length: int | None, locales: tuple[str, ...], seed: int,
                  total: int, where: str) -> list[tuple[np.ndarray, Any, Any]] | _Codes:
    """How a unique column gets its values: per locale, the distinct bases that positions
    number (see the module doc); else, when a column too narrow for numbers has room for
    ``total`` values, a keyed sequence of codes of the values' shape and the column's width.

    A run first draws as many Faker values as it needs rows; a narrow column (a two-letter
    ``state_abbr``) draws the whole pool before falling back to codes, so 51 rows still get
    51 real abbreviations.
    """
    pool = _pool_size(locales)
    for size in dict.fromkeys((min(total, pool), pool)):
        bases = _provider_bases(provider, max_length, locales, seed, size, total, where)
        if bases is not None:
            return bases
    return _codes(provider, int(max_length), locales, seed, total, where)


def _unique_at(bases: tuple[np.ndarray, np.ndarray | None, np.ndarray | None],
               index: np.ndarray) -> np.ndarray:
    """The values at run positions ``index``: base ``i % D``, numbered ``i // D + 1`` after
    the first round (distinct positions give distinct values)."""
    head, tail, email = bases
    base, rounds = index % len(head), index // len(head)
    if tail is None:
        return head[base]
    out = pd.Series(head[base] + tail[base], dtype=object)
    again = rounds > 0
    if again.any():
        b = base[again]
        number = pd.Series(rounds[again] + 1).astype(str).to_numpy(dtype=object)
        sep = np.where(email[b], "", " ").astype(object)
        out[again] = head[b] + sep + number + tail[b]
    return out.to_numpy(dtype=object)


def unique_generate(spec: dict[str, Any], locale_of_row: np.ndarray, locales: tuple[str, ...],
                    index: np.ndarray, seed: int, total: int, where: str) -> np.ndarray:
    """Values of a unique personal-data column at run positions ``index`` (see the module doc).

    Memory: one pool of at most ``POOL_SIZE`` values per column, whatever the run's size.
    """
    bases = _unique_bases(spec["provider"], spec.get("max_length"), tuple(locales), int(seed),
                          int(total), where)
    if isinstance(bases, _Codes):  # positions are distinct in the run, whatever the locale
        return keygen.pattern_strings(list(bases.positions), index, bases.seed, where, total)
    out = np.empty(len(index), dtype=object)
    for i in range(len(locales)):
        rows = np.flatnonzero(locale_of_row == i)
        if len(rows):
            out[rows] = _unique_at(bases[i], index[rows])
    if pd.Series(out).duplicated().any():  # cannot happen by construction; never write it
        raise SamplingError(f"Column {where}: could not make {len(out)} unique values")
    return out


# Faker values drawn to find ones that fit a narrow column: 8 per row wanted, at most 100.
# A country's rows are their own locale's group (Chinook's invoices: 24 groups per column),
# and 100 values for each group of two rows made sampling Chinook 6 times slower.
_FIT_POOL, _FIT_PER_ROW = 100, 8


def _from_pool(spec: dict[str, Any], n: int, rng: np.random.Generator,
               locales: tuple[str, ...], where: str, pool_size: int = POOL_SIZE) -> np.ndarray:
    size = min(n, pool_size)
    if spec.get("fit_width") and spec.get("max_length"):
        # A few rows still choose among enough values to find whole ones that fit: one value
        # per row would be cut when it is too long ('North Leighmout').
        size = min(max(n, min(_FIT_POOL, _FIT_PER_ROW * n)), pool_size)
    seed = int(rng.integers(2**31))
    made = _call(tuple(locales), spec["provider"], size, seed, where, bool(spec.get("plain")))
    if spec.get("fit_width") and spec.get("max_length"):
        # Values chosen to fit the width, not cut to it ('Bosnia and Herz'): the rows draw
        # from the pool's values that fit, when there are any (a model of hma_db 0.1 cuts).
        fits = [v for v in made if not isinstance(v, str) or len(v.replace("\n", ", "))
                <= spec["max_length"]]
        if fits and len(fits) < len(made):  # each value once, then again (no more are made)
            pool = _as_text(fits, spec["max_length"]).to_numpy(dtype=object)
            if n <= len(pool):
                return pool[:n]
            if n <= size:
                return np.concatenate([pool, pool[rng.integers(len(pool), size=n - len(pool))]])
            return pool[rng.integers(len(pool), size=n)]
    pool = _as_text(made, spec.get("max_length"))
    if n <= size:
        return pool.to_numpy(dtype=object)[:n]
    return pool.to_numpy(dtype=object)[rng.integers(size, size=n)]


def row_locales(n: int, locales: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """The locale (an index into ``locales``) of each row, shared by all its personal data."""
    if len(locales) == 1:
        return np.zeros(n, dtype="int64")
    return rng.integers(len(locales), size=n)


def generate(spec: dict[str, Any], locale_of_row: np.ndarray, rng: np.random.Generator,
             locales: tuple[str, ...], where: str, *, index: np.ndarray | None = None,
             seed: int | None = None, total: int | None = None) -> np.ndarray:
    """Personal-data values for rows whose locales are given (one value per row, no nulls).

    Each locale's rows take values from that locale's Faker, so a row whose name is French
    also has a French address and phone number. A unique column's values are those of the
    rows' positions ``index`` in a run of ``total`` rows whose values ``seed`` fixes (chunked
    sampling); by default the rows are a run of their own.
    """
    if spec.get("unique"):
        n = len(locale_of_row)
        index = np.arange(n, dtype=np.int64) if index is None else np.asarray(index, np.int64)
        total = max(int(total or 0), int(index.max()) + 1 if n else 0)
        seed = int(rng.integers(2**63)) if seed is None else seed
        return unique_generate(spec, locale_of_row, locales, index, seed, total, where)
    out = np.empty(len(locale_of_row), dtype=object)
    for i, locale in enumerate(locales):
        rows = np.flatnonzero(locale_of_row == i)
        if len(rows) and spec.get("null_share", 0) > 0 and lacks_region(locale, spec["provider"]):
            continue  # left NULL: a US state in a Belgian address is worse than none
        if len(rows):
            out[rows] = _from_pool(spec, len(rows), rng, (locale,), where, _pool_size(locales))
    return out


# Parts of an address that only some countries have; a locale without one (nl_BE has no
# state, en_IE no county list) would otherwise get en_US's ("Vermont" in Belgium).
_REGIONAL = {"state", "state_abbr", "administrative_unit", "region"}


@lru_cache(maxsize=512)
def lacks_region(locale: str, provider: str) -> bool:
    """Is ``provider`` a regional address part that ``locale``'s Faker lacks, so that only
    en_US's would be found: by the stand-ins of :func:`resolve_provider`, or through Faker's
    inheritance (fr_BE's ``state`` is en_US's list: "California" in Belgium)?"""
    if provider not in _REGIONAL or locale == "en_US":
        return False
    try:
        locales, name = resolve_provider((locale,), provider)
    except AttributeError:
        return True
    if locales != (locale,):
        return True
    # 40 draws of a locale's own list repeat none of en_US's 50 states by chance
    # (measured: de_AT, sv_SE, pt_BR, cs_CZ, en_IN, en_AU share none).
    own = set(_call((locale,), name, 40, 0, locale))
    return own <= set(_call(("en_US",), name, 400, 0, "en_US"))
