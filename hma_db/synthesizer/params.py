"""The per-table parameters of :class:`~hma_db.HMASynthesizer`, checked once where they enter.

They are the parameters of SDV's ``GaussianCopulaSynthesizer``: ``default_distribution``,
``numerical_distributions``, ``enforce_min_max_values``, ``enforce_rounding`` (and ``locales``,
which defaults to the synthesizer's). Distributions are the parametric marginals of
``copulas.univariate`` and ``empirical`` (interpolated quantiles, at most a fixed number of
knots: :mod:`hma_db.model.empirical`); ``gaussian_kde`` is refused because the hierarchical
model aggregates a fixed number of parameters per column, which a kernel density does not have.
"""

from __future__ import annotations

import copy
from typing import Any

from faker.config import AVAILABLE_LOCALES

from hma_db.errors import SynthesizerInputError
from hma_db.schema import Metadata

PARAMETRIC = ("norm", "beta", "truncnorm", "gamma", "uniform", "student_t")
DISTRIBUTIONS = (*PARAMETRIC, "empirical")
NON_PARAMETRIC = ("gaussian_kde",)
DEFAULT_DISTRIBUTION = "beta"
PARAMETER_NAMES = ("enforce_min_max_values", "enforce_rounding", "locales",
                   "numerical_distributions", "default_distribution")


def check_locales(locales: Any) -> list[str]:
    """``locales`` as a list of Faker locale names (a single string is accepted)."""
    if isinstance(locales, str):
        locales = [locales]
    if not isinstance(locales, (list, tuple)) or not locales:
        raise SynthesizerInputError(
            f"locales must be a non-empty list of locale names such as ['en_US']; found {locales!r}.")
    unknown = [loc for loc in locales if loc not in AVAILABLE_LOCALES]
    if unknown:
        raise SynthesizerInputError(
            f"Unknown locale(s) {', '.join(repr(x) for x in unknown)}; expected Faker locales "
            "such as 'en_US' or 'fr_CA' (see faker.config.AVAILABLE_LOCALES).")
    return list(locales)


def default_parameters(locales: list[str]) -> dict[str, Any]:
    """The parameters a table gets until ``set_table_parameters`` changes them."""
    return {"enforce_min_max_values": True, "enforce_rounding": True, "locales": list(locales),
            "numerical_distributions": {}, "default_distribution": DEFAULT_DISTRIBUTION}


def _check_distribution(name: Any, where: str) -> None:
    if name in NON_PARAMETRIC:
        raise SynthesizerInputError(
            f"The '{name}' distribution ({where}) is not compatible with the HMA algorithm: it "
            f"has no fixed set of parameters to learn across tables. Choose a parametric one "
            f"such as 'beta' or 'truncnorm' (one of {', '.join(PARAMETRIC)}), or 'empirical'.")
    if name not in DISTRIBUTIONS:
        raise SynthesizerInputError(
            f"Unknown distribution {name!r} ({where}); expected one of {', '.join(DISTRIBUTIONS)}.")


def _check_columns(metadata: Metadata, table_name: str, distributions: Any) -> None:
    if not isinstance(distributions, dict):
        raise SynthesizerInputError(
            f"numerical_distributions for table '{table_name}' must be a dict "
            f"{{column: distribution}}; found {type(distributions).__name__}.")
    columns = metadata.tables[table_name]["columns"]
    keys = set(metadata.primary_key(table_name)) | set(metadata.foreign_key_columns(table_name))
    for column, name in distributions.items():
        if column not in columns:
            raise SynthesizerInputError(
                f"numerical_distributions names the column '{table_name}.{column}', which does "
                f"not exist; the columns of '{table_name}' are: {', '.join(columns)}.")
        if column in keys:
            raise SynthesizerInputError(
                f"numerical_distributions names '{table_name}.{column}', a key column: keys are "
                "generated, not modeled, so they have no distribution.")
        _check_distribution(name, f"column '{table_name}.{column}'")


def check_table_parameters(metadata: Metadata, table_name: Any,
                           table_parameters: Any) -> dict[str, Any]:
    """Check ``set_table_parameters`` arguments; return a deep copy of the parameters.

    Raises:
        SynthesizerInputError: an unknown table, parameter, column or distribution, or
            ``gaussian_kde``; the message names it.
    """
    if not isinstance(table_name, str) or table_name not in metadata.tables:
        raise SynthesizerInputError(
            f"Unknown table {table_name!r}; the metadata has: {', '.join(sorted(metadata.tables))}.")
    if not isinstance(table_parameters, dict):
        raise SynthesizerInputError(
            f"table_parameters for '{table_name}' must be a dict; found "
            f"{type(table_parameters).__name__}.")
    unknown = [k for k in table_parameters if k not in PARAMETER_NAMES]
    if unknown:
        raise SynthesizerInputError(
            f"Unknown parameter(s) {', '.join(repr(k) for k in unknown)} for table "
            f"'{table_name}'; HMASynthesizer tables accept: {', '.join(PARAMETER_NAMES)}.")
    params = copy.deepcopy(table_parameters)
    if "default_distribution" in params:
        _check_distribution(params["default_distribution"], f"default of table '{table_name}'")
    if "numerical_distributions" in params:
        _check_columns(metadata, table_name, params["numerical_distributions"])
    for flag in ("enforce_min_max_values", "enforce_rounding"):
        if flag in params and not isinstance(params[flag], bool):
            raise SynthesizerInputError(
                f"{flag} for table '{table_name}' must be True or False; found {params[flag]!r}.")
    if "locales" in params:
        params["locales"] = check_locales(params["locales"])
    return params


def check_small_table_rows(rows: Any) -> int:
    """``small_table_rows`` of :class:`~hma_db.HMASynthesizer`: a non-negative integer."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise SynthesizerInputError(
            f"small_table_rows must be a non-negative integer (0 turns the replay of small "
            f"tables off); found {rows!r}.")
    return int(rows)
