"""What happens to each column of a table: its *role*, decided from the metadata, and what is
learned for it at fit.

Roles: ``primary_key`` and ``foreign_key`` (made by the synthesizer from generated keys and
sampled links), ``key`` (another unique column: generated unique), ``modeled`` (numbers,
timestamps, categories: through the copula), ``personal`` (Faker), ``generated`` (by type),
``constant`` (one value, or only nulls), ``choice`` (a categorical column none of whose values
is frequent enough to show, but whose allowed values the schema lists), and for a column with a
masking policy (:mod:`hma_db.schema.policies`) ``values`` (``keep``, ``hash``, ``mask``: source
values, hashed or masked at fit, drawn in their source proportions) or the role the policy
amounts to (``model``: modeled; ``fake``: personal; ``null`` and ``constant``: constant).

Every spec is a plain JSON-able dict, so a fitted transformer is saved and loaded without pickle.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import DataError
from hma_db.schema import (
    BASIC_SDTYPES,
    Metadata,
    fake_provider,
    guess_from_name,
    parse_policy,
    to_json,
)
from hma_db.transform import encoders, endings, generators, masking
from hma_db.transform.keys import keygen, keytime
from hma_db.transform.personal import (
    has_extensions,
    has_titles,
    provider_for,
    unique_generate,
)

logger = logging.getLogger(__name__)
MODELED_SDTYPES = ("numerical", "datetime", "categorical", "boolean")


def unique_columns(metadata: Metadata, table: str) -> set[str]:
    """Columns generated unique to keep the alternate keys unique.

    A one-column key (an alternate key or a partial unique index) makes its column unique. A
    composite key is kept unique by making one of its columns unique: the last one that is
    neither a foreign key (those come from sampled links) nor personal data, else the last
    personal-data column. A key made only of foreign keys is left to the hierarchical model,
    which never repeats a combination.
    """
    columns = metadata.tables[table]["columns"]
    fks = set(metadata.foreign_key_columns(table))
    chosen: set[str] = set()
    for key in [*metadata.alternate_keys(table), *partial_unique_keys(columns)]:
        free = [c for c in key if c not in fks]
        plain = [c for c in free if not is_personal(columns[c])]
        if plain or free:
            chosen.add((plain or free)[-1])
    return chosen


def referenced_keys(metadata: Metadata, table: str) -> list[str]:
    """Unique columns, not of the primary key, that a foreign key references: generated with
    the primary key (never NULL), since children take their values from the sampled parents."""
    pk = set(metadata.primary_key(table))
    found = [c for rel in metadata.relationships if rel["parent_table_name"] == table
             for c in ([rel["parent_primary_key"]] if isinstance(rel["parent_primary_key"], str)
                       else rel["parent_primary_key"]) if c not in pk]
    return list(dict.fromkeys(found))


def partial_unique_keys(columns: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The columns of partial unique indexes (``partial_unique`` on their first column): the
    target enforces them, so they are sampled unique in every row (a safe superset)."""
    return [list(key) for spec in columns.values() for key in spec.get("partial_unique", [])]


def is_personal(spec: dict[str, Any]) -> bool:
    """Personal data: ``pii: True`` or a Faker provider as sdtype."""
    return bool(spec.get("pii")) or spec.get("sdtype") not in BASIC_SDTYPES


def plan_roles(metadata: Metadata, table: str) -> dict[str, str]:
    """The role of every column of a table, from the metadata alone."""
    columns = metadata.tables[table]["columns"]
    pk, fks = set(metadata.primary_key(table)), set(metadata.foreign_key_columns(table))
    unique = unique_columns(metadata, table)
    referenced = set(referenced_keys(metadata, table))
    roles = {}
    for name, spec in columns.items():
        sdtype = spec.get("sdtype")
        if name in fks:
            roles[name] = "foreign_key"
        elif name in pk:
            roles[name] = "primary_key"
        elif name in referenced:  # children copy its values: a generated key, even if personal
            roles[name] = "key"
        elif spec.get("policy") is not None and name not in unique and sdtype != "id":
            roles[name] = "policy"
        elif is_personal(spec):
            roles[name] = "personal"
        elif name in unique or sdtype == "id":
            roles[name] = "key"
        elif sdtype in MODELED_SDTYPES:
            roles[name] = "modeled"
        else:
            roles[name] = "generated"
    return roles


def null_share(series: pd.Series) -> float:
    return float(series.isna().mean()) if len(series) else 0.0


# --------------------------------------------------------------------------- learning
class Learner:
    """Learns the spec of each column and builds rdt's input for the modeled ones."""

    def __init__(self, table: str, metadata: Metadata, *, enforce_rounding: bool,
                 enforce_min_max_values: bool, min_category_count: int):
        self.table = table
        self.columns = metadata.tables[table]["columns"]
        self.unique = unique_columns(metadata, table)
        self.enforce_rounding = enforce_rounding
        self.enforce_min_max = enforce_min_max_values
        self.min_count = min_category_count

    def where(self, column: str) -> str:
        return f"'{self.table}.{column}'"

    def learn(self, role: str, column: str, series: pd.Series, dtype: str,
              kind: str) -> dict[str, Any]:
        meta = self.columns[column]
        if role == "foreign_key":
            return {"role": role}
        if role in ("primary_key", "key"):
            return {"role": role, "key": keygen.learn_key(series, meta, self.min_count),
                    "null_share": null_share(series)}
        if role == "personal":
            return _plain_names({"role": role, "null_share": null_share(series),
                    "provider": provider_for(meta.get("sdtype"), column, self.where(column)),
                    "unique": column in self.unique, "max_length": meta.get("max_length"),
                    "fit_width": True, "in_row": True}, series)
        if role == "generated":
            return self.generated(column, series, dtype, kind)
        if role == "policy":
            return self.policy(column, series, dtype, kind)
        return self.modeled(column, series, dtype, kind)

    def policy(self, column: str, series: pd.Series, dtype: str, kind: str) -> dict[str, Any]:
        """The spec of a column with a masking policy (:mod:`hma_db.schema.policies`)."""
        meta, where = self.columns[column], self.where(column)
        policy = parse_policy(meta["policy"], f"column {where}")
        if policy.name == "model":
            if meta.get("sdtype") in MODELED_SDTYPES:
                return self.modeled(column, series, dtype, kind)
            return self.categorical(column, series, dtype, kind)
        if policy.name == "fake":
            provider = provider_for(policy.provider or fake_provider(column, meta.get("sdtype")),
                                    column, where)
            spec = {"role": "personal", "null_share": null_share(series), "provider": provider,
                    "unique": bool(meta.get("fake_unique")), "max_length": meta.get("max_length"),
                    "locale": policy.locale, "fit_width": True}
            if meta.get("pseudonymous"):  # rdt's PseudoAnonymizedFaker, chosen by the user
                return _pseudonyms(spec, series.dropna(), where)
            return _plain_names(spec, series)
        if policy.name == "null":
            return {"role": "constant", "value": None, "null_share": 1.0}
        if policy.name == "constant":
            return {"role": "constant", "value": to_json(_typed_constant(policy.value, series,
                                                                         kind, where)),
                    "null_share": 0.0}
        if is_personal(meta):
            logger.warning("column %s is guessed personal data and its policy %s puts values "
                           "of the source into the target", where, policy.name)
        return _source_values(policy, series.dropna(), kind, where) | {
            "null_share": null_share(series)}

    def generated(self, column: str, series: pd.Series, dtype: str, kind: str,
                  generator: str | None = None) -> dict[str, Any]:
        chosen = generator or self.columns[column].get("generator")
        generator = chosen or _infer_generator(dtype, kind)
        # Reflection leaves out the generator of a text column whose few values repeat
        # (hma_db.source.profiling): a given generator 'text' still makes words.
        if chosen is None and generator == "text" and encoders.is_closed_vocabulary(series):
            return self.vocabulary(series)  # 'Sales Manager', 'Ms.': never a random word
        spec = generators.learn(generator, series.dropna(), self.min_count)
        spec.update(role="generated", null_share=null_share(series),
                    max_length=self.columns[column].get("max_length"))
        return spec

    def modeled(self, column: str, series: pd.Series, dtype: str, kind: str) -> dict[str, Any]:
        sdtype = self.columns[column]["sdtype"]
        # A transformer chosen for the column (update_transformers) may set its own flags.
        enforce_min_max = self.columns[column].get("enforce_min_max_values", self.enforce_min_max)
        enforce_rounding = self.columns[column].get("enforce_rounding", self.enforce_rounding)
        if sdtype in ("categorical", "boolean"):
            return self.categorical(column, series, dtype, kind)
        nulls = series.isna().to_numpy()
        if nulls.all():
            return {"role": "constant", "value": None, "null_share": 1.0}
        share = float(nulls.mean())
        if sdtype == "datetime" and kind != "time":
            stamps = encoders.as_utc(series, self.table, column,
                                     self.columns[column].get("datetime_format"))
            spec = encoders.learn_datetime(stamps, enforce_min_max=enforce_min_max)
            spans = keytime.partition_spans(self.columns[column], spec["unit_ns"])
            if spans:  # a range-partitioned table: no value between two partitions
                spec["spans"] = spans
        else:
            values = encoders.as_numbers(series, self.table, column, kind)
            integer = dtype.lower().lstrip("u").startswith("int") or kind == "int"
            spec = encoders.learn_numerical(values, integer=integer,
                                            enforce_rounding=enforce_rounding,
                                            enforce_min_max=enforce_min_max)
            spec["scale"] = self.columns[column].get("scale")
            if spec["min"] != spec["max"] and encoders.is_discrete(values, self.min_count):
                return self.discrete(values, spec)
            if kind != "time":  # seconds of the day: their endings are the clock's
                spec["endings"] = endings.learn(values[~nulls], spec["digits"])
            if spec["min"] == spec["max"] and _one_value_and_nulls(series, self.min_count):
                return self.discrete(values, spec)  # the nulls follow the other columns
        if spec["min"] == spec["max"]:
            return {"role": "constant", "value": to_json(series.iloc[int(np.argmin(nulls))]),
                    "null_share": share}
        spec.update(role="modeled", has_nulls=share > 0, intervals=[], null_intervals=[],
                    null_share=share)
        return spec

    def discrete(self, values: np.ndarray, numbers: dict[str, Any]) -> dict[str, Any]:
        """A few-valued number as an ordered category (nulls are one more category)."""
        spec = encoders.learn_categorical(pd.Series(values), min_count=self.min_count,
                                          allowed=None, ordered=True)
        spec.update(role="modeled", numeric=True,
                    digits=encoders.learn_digits(values[~np.isnan(values)]),
                    scale=numbers["scale"])
        return spec

    def vocabulary(self, series: pd.Series) -> dict[str, Any]:
        """A closed vocabulary (:func:`~hma_db.transform.encoders.is_closed_vocabulary`): the
        values seen ``CLOSED_MIN_COUNT`` times, drawn in their source proportions (the rarer
        ones folded into them), outside the copula: these are small tables, where more
        copula columns make the parent statistics of their children noisier (Northwind
        quality, mean of seeds 0-5: 0.712 with the vocabularies modeled, 0.717 drawn apart,
        0.720 with random words)."""
        counts = series.dropna().value_counts()
        counts = counts[counts >= min(self.min_count, encoders.CLOSED_MIN_COUNT)]
        if len(counts) == 1 and counts.iloc[0] + series.isna().sum() == len(series):
            return {"role": "constant", "value": to_json(counts.index[0]),
                    "null_share": null_share(series)}
        return {"role": "choice", "values": [to_json(v) for v in counts.index],
                "weights": [float(c) for c in counts.to_numpy()], "null_share": null_share(series)}

    def tiny(self, series: pd.Series) -> dict[str, Any]:
        """A table of at most ``min_category_count`` rows (a lookup list, a test fixture) with
        at least two values: drawn in their proportions, as SDV samples them. Every value of
        such a table is below the count, so the rare-value rule would leave only words."""
        counts = series.dropna().value_counts()
        return {"role": "choice", "values": [to_json(v) for v in counts.index],
                "weights": [float(c) for c in counts.to_numpy()], "null_share": null_share(series)}

    def categorical(self, column: str, series: pd.Series, dtype: str,
                    kind: str) -> dict[str, Any]:
        meta = self.columns[column]
        boolean = meta["sdtype"] == "boolean"
        # Booleans show no rare real value: their domain is known, so every value may appear;
        # nor does a country, public by nature and shared by millions: its values are kept
        # (Chinook's invoices keep their 24 countries, copied from their customers).
        least = 1 if guess_from_name(column) == "country" else self.min_count
        spec = encoders.learn_categorical(series, min_count=1 if boolean else least,
                                          allowed=meta.get("allowed_values"),
                                          ordered=bool(meta.get("ordered_categories")))
        nulls = bool(series.isna().any())
        categories = spec["categories"]
        if not categories:
            if meta.get("allowed_values"):
                return {"role": "choice", "values": [to_json(v) for v in meta["allowed_values"]],
                        "null_share": null_share(series)}
            if nulls and series.dropna().empty:
                return {"role": "constant", "value": None, "null_share": 1.0}
            if encoders.is_closed_vocabulary(series):
                return self.vocabulary(series)
            # Too few rows for any value to be frequent; one value alone would copy its row.
            if len(series) <= self.min_count and series.nunique() > 1:
                return self.tiny(series)
            return self.generated(column, series, dtype, kind, "number" if kind in (
                "int", "float") else meta.get("generator", "text"))  # a SET: 'set
        if len(categories) == 1 and spec["counts"][0] + series.isna().sum() == len(series) \
                and not _one_value_and_nulls(series, self.min_count):
            return {"role": "constant", "value": categories[0], "null_share": null_share(series)}
        spec.update(role="modeled")
        return spec


def _typed_constant(text: str, series: pd.Series, kind: str, where: str) -> Any:
    """A ``constant:VALUE`` policy's value as a value of the column (a number for a number)."""
    if kind in ("int", "float", "decimal", "bool") or pd.api.types.is_numeric_dtype(series):
        try:
            number = float(text)
        except ValueError as exc:
            raise DataError(f"{where}: policy constant:{text} is not a number, and the column "
                            f"holds {kind} values") from exc
        return int(number) if kind == "int" and number.is_integer() else number
    return text


def _source_values(policy, observed: pd.Series, kind: str, where: str) -> dict[str, Any]:
    """``keep``, ``hash`` and ``mask``: the distinct source values (hashed or masked) and how
    often each occurs, which sampling draws from."""
    try:
        counts = observed.value_counts(sort=False)
        distinct, weights = pd.Series(counts.index, dtype=observed.dtype), counts.to_numpy()
    except TypeError:  # unhashable values (JSON documents, arrays): every value, once
        distinct, weights = observed.reset_index(drop=True), np.ones(len(observed))
    if policy.name == "hash":
        distinct = masking.hash_values(distinct, kind, where)
    elif policy.name == "mask":
        distinct = masking.mask_values(distinct, policy, kind, where)
    return {"role": "values", "policy": policy.name,
            "values": [to_json(v) for v in distinct], "weights": [float(w) for w in weights]}


def _one_value_and_nulls(series: pd.Series, min_count: int) -> bool:
    """One value, seen at least ``min_count`` times, and nulls as often: modeled as a category
    with its nulls (as SDV models it), so where the nulls fall follows the other columns, where
    a constant would scatter them at random."""
    nulls = int(series.isna().sum())
    return nulls >= min_count and len(series) - nulls >= min_count


def _pseudonyms(spec: dict[str, Any], observed: pd.Series, where: str) -> dict[str, Any]:
    """rdt's ``PseudoAnonymizedFaker``: one distinct Faker value for each distinct source value,
    drawn in the source values' proportions. Only the Faker values are kept, never the source
    values or which one maps to which. Faker's locale is the chosen one, else en_US (rdt's)."""
    counts = observed.astype(str).value_counts(sort=False)
    locale = spec.get("locale") or "en_US"
    fakes = unique_generate(spec, np.zeros(len(counts), dtype="int64"), (locale,),
                            np.arange(len(counts), dtype=np.int64), 0, max(len(counts), 1), where)
    return {"role": "values", "policy": "pseudonym", "values": [to_json(v) for v in fakes],
            "weights": [float(c) for c in counts.to_numpy()],
            "null_share": spec["null_share"]}


def _infer_generator(dtype: str, kind: str) -> str:
    """The generator of an 'unknown' column without one, from its values."""
    by_kind = {"bytes": "bytes", "dict": "json", "list": "array", "uuid": "uuid",
               "timedelta": "interval", "ip": "ip", "int": "number", "float": "number",
               "decimal": "number"}
    if dtype.startswith("timedelta"):
        return "interval"
    return by_kind.get(kind, "text")


def prepare(spec: dict[str, Any], table: str, column: str, series: pd.Series, kind: str,
            fmt: str | None) -> dict[str, Any]:
    """rdt's input for one modeled column: {input column: (values, rdt sdtype)}."""
    if spec["kind"] == "categorical":
        if spec.get("numeric"):
            series = pd.Series(encoders.as_numbers(series, table, column, kind))
        return {column: (encoders.category_codes(series, spec), "categorical")}
    if spec["kind"] == "datetime":
        stamps = encoders.as_utc(series, table, column, fmt)
        nulls = stamps.isna().to_numpy()
        ns = stamps.to_numpy().astype("int64")
        filled = encoders.fill_nulls(ns, nulls, table, column).astype("datetime64[ns]")
        out = {column: (filled, "datetime")}
    else:
        values = encoders.as_numbers(series, table, column, kind)
        nulls = np.isnan(values)
        out = {column: (encoders.fill_nulls(values, nulls, table, column), "numerical")}
    if spec["has_nulls"]:
        out[column + encoders.NULL_SUFFIX] = (encoders.null_codes(nulls), "categorical")
    return out


def _plain_names(spec: dict[str, Any], series: pd.Series) -> dict[str, Any]:
    """A name column whose real names carry no title makes names without Faker's titles and
    suffixes ("Mr. Drew Joyce PhD" -> "Drew Joyce"), as the source writes them; a phone column
    whose real numbers have no extension makes numbers without one."""
    if spec["provider"].startswith("name") and not has_titles(series) or \
            spec["provider"].startswith("phone") and not has_extensions(series):
        spec["plain"] = True
    return spec
