"""Personal data: values made by Faker with the synthesizer's locales, never copied.

Each row gets one locale (drawn from the synthesizer's ``locales``) that all its personal-data
columns share, so names, addresses and phone numbers of a row belong together.

A Faker call costs 10-150 microseconds, so a column of 100,000 rows is not made one call per
row: at most ``POOL_SIZE`` values per locale are drawn from Faker (seeded from the caller's generator, so
output is repeatable) and the rows sample from that pool. A column that must be unique takes the
distinct pool values and, when it needs more rows than the pool has distinct values, repeats
them with a numeric suffix (``jane.doe@example.org`` -> ``jane.doe2@example.org``,
``Jane Doe`` -> ``Jane Doe 2``), cut to fit ``max_length``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from hma_db import pii
from hma_db.errors import MetadataError, SamplingError

POOL_SIZE = 5_000  # Faker calls per column and sample, at most (split between the locales)


@lru_cache(maxsize=16)
def faker_for(locales: tuple[str, ...]):
    """One (multi-locale) Faker per set of locales; seeded before each use.

    ``use_weighting=False`` draws names and words uniformly from Faker's lists instead of by
    their real-world frequency: 10 to 30 times faster (measured: ``last_name`` 18 us instead of
    550 us per value), and the values are no less plausible.
    """
    from faker import Faker

    return Faker(list(locales), use_weighting=False)


def provider_for(sdtype: str, column: str, where: str) -> str:
    """The Faker method for a personal-data column: its sdtype, else a guess from its name."""
    if pii.is_faker_provider(sdtype):
        return sdtype
    guess = pii.guess_from_name(column)
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
def resolve(locales: tuple[str, ...], provider: str) -> tuple[tuple[str, ...], str]:
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
          where: str) -> list[Any]:
    try:
        locales, provider = resolve(tuple(locales), provider)
        fake = faker_for(locales)
        fake.seed_instance(seed)
        # A multi-locale Faker picks the locale when the attribute is read: read it per call.
        return [getattr(fake, provider)() for _ in range(count)]
    except (AttributeError, TypeError) as exc:
        raise MetadataError(f"Column {where}: Faker cannot generate '{provider}' for the "
                            f"locales {list(locales)}: {exc}") from exc


def _as_text(values: list[Any], max_length: int | None) -> pd.Series:
    out = pd.Series(values, dtype=object)
    if out.map(lambda v: isinstance(v, str)).all():
        out = out.str.replace("\n", ", ", regex=False)
        if max_length:
            out = out.str.slice(0, max_length).str.rstrip()
    return out


def _suffixed(base: pd.Series, rounds: np.ndarray, max_length: int | None) -> pd.Series:
    """``base`` with ``round + 1`` appended where ``round > 0`` (before '@' for emails)."""
    base = base.astype(str).reset_index(drop=True)
    number = pd.Series(rounds + 1).astype(str)
    email = base.str.contains("@", regex=False)
    local = base.str.partition("@")
    head = local[0].where(email, base)
    tail = ("@" + local[2]).where(email, "")
    sep = pd.Series(np.where(email, "", " "))
    suffix = (sep + number).where(rounds > 0, "")
    if max_length:
        room = max_length - tail.str.len() - suffix.str.len()
        if (room < 1).any():
            raise SamplingError(f"max_length {max_length} leaves no room to make values unique")
        # Cut each head to its room: one vectorized slice per distinct room, not per row.
        for width in pd.unique(room):
            rows = (room == width).to_numpy()
            head[rows] = head[rows].str.slice(0, int(width))
    return head + suffix + tail


def _resuffix(values: pd.Series, first: int, max_length: int | None) -> pd.Series:
    """Give every repeated value (after its first occurrence) its own numeric suffix."""
    values = values.reset_index(drop=True)
    again = values.duplicated().to_numpy()
    if again.any():
        numbers = first + np.arange(int(again.sum()))
        values[again] = _suffixed(values[again], numbers, max_length).to_numpy()
    return values


def unique_values(pool: pd.Series, m: int, rng: np.random.Generator, max_length: int | None,
                  where: str) -> np.ndarray:
    """``m`` distinct values built from the pool's distinct values."""
    distinct = pd.Series(pd.unique(pool), dtype=object)
    distinct = distinct.iloc[rng.permutation(len(distinct))].reset_index(drop=True)
    if len(distinct) >= m:
        return distinct.iloc[:m].to_numpy(dtype=object)
    if len(distinct) == 0:
        raise SamplingError(f"Column {where}: Faker produced no value to build unique ones from")
    index = np.arange(m)
    base = distinct.iloc[index % len(distinct)].reset_index(drop=True)
    try:
        out = _suffixed(base, index // len(distinct), max_length)
        # A suffixed value may meet a pool value ("Ann 2" drawn by Faker): number it again.
        out = _resuffix(out, m + 1, max_length)
    except SamplingError as exc:
        raise SamplingError(f"Column {where}: {exc}") from exc
    if out.duplicated().any():
        raise SamplingError(f"Column {where}: could not make {m} unique values")
    return out.to_numpy(dtype=object)


def _from_pool(spec: dict[str, Any], n: int, rng: np.random.Generator,
               locales: tuple[str, ...], where: str, pool_size: int = POOL_SIZE) -> np.ndarray:
    size = min(n, pool_size)
    seed = int(rng.integers(2**31))
    pool = _as_text(_call(tuple(locales), spec["provider"], size, seed, where),
                    spec.get("max_length"))
    if spec.get("unique"):
        return unique_values(pool, n, rng, spec.get("max_length"), where)
    if n <= size:
        return pool.to_numpy(dtype=object)
    return pool.to_numpy(dtype=object)[rng.integers(size, size=n)]


def row_locales(n: int, locales: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """The locale (an index into ``locales``) of each row, shared by all its personal data."""
    if len(locales) == 1:
        return np.zeros(n, dtype="int64")
    return rng.integers(len(locales), size=n)


def generate(spec: dict[str, Any], locale_of_row: np.ndarray, rng: np.random.Generator,
             locales: tuple[str, ...], where: str) -> np.ndarray:
    """Personal-data values for rows whose locales are given (one value per row, no nulls).

    Each locale's rows take values from that locale's Faker, so a row whose name is French
    also has a French address and phone number.
    """
    out = np.empty(len(locale_of_row), dtype=object)
    for index, locale in enumerate(locales):
        rows = np.flatnonzero(locale_of_row == index)
        if len(rows):
            # The Faker budget is shared: POOL_SIZE calls per column whatever the locales.
            out[rows] = _from_pool(spec, len(rows), rng, (locale,), where,
                                   max(POOL_SIZE // len(locales), 500))
    if spec.get("unique") and len(locales) > 1:
        try:  # two locales may have drawn the same value
            out = _resuffix(pd.Series(out, dtype=object), len(out) + 1,
                            spec.get("max_length")).to_numpy(dtype=object)
        except SamplingError as exc:
            raise SamplingError(f"Column {where}: {exc}") from exc
        if pd.Series(out).duplicated().any():
            raise SamplingError(f"Column {where}: could not make {len(out)} unique values")
    return out
