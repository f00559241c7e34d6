"""The transformer of each column, chosen with rdt's classes as in SDV
(``update_transformers``), and shown with them (``get_transformers``).

hma_db does not run rdt's transformers to sample: its transform stage decodes from plain data
(:mod:`hma_db.transform.table`). A chosen transformer is therefore kept as its class name and
parameters, and turned at fit into the column settings the transform stage reads:

========================  ================================================================
rdt transformer           what the column becomes
========================  ================================================================
``AnonymizedFaker``       Faker's ``function_name`` (policy ``fake:FUNCTION[:LOCALE]``);
                          ``cardinality_rule='unique'`` makes the values unique
``PseudoAnonymizedFaker`` one Faker value per distinct real value, drawn in the real values'
                          proportions; no real value is kept in the model
``RegexGenerator``        a generated key made from ``regex_format`` (unique)
``FloatFormatter``        a modeled number; ``learn_rounding_scheme`` and
                          ``enforce_min_max_values`` for this column
``UniformEncoder``        a modeled category (hma_db's frequency intervals are this encoding)
``LabelEncoder``          a modeled category whose codes follow the values' order
``UnixTimestampEncoder``  a modeled datetime; ``datetime_format``, ``enforce_min_max_values``
========================  ================================================================

A model file names a class only from this list and holds its parameters as plain values, so
loading one builds nothing the file asks for beyond these rdt classes' constructors.
"""

from __future__ import annotations

import inspect
from typing import Any

from hma_db.errors import SynthesizerInputError

SUPPORTED = ("AnonymizedFaker", "PseudoAnonymizedFaker", "RegexGenerator", "FloatFormatter",
             "UniformEncoder", "LabelEncoder", "UnixTimestampEncoder")
_PLAIN = (str, int, float, bool, type(None))


def rdt_classes() -> dict[str, type]:
    """The supported rdt classes by name (rdt is imported only when a transformer is used)."""
    import rdt.transformers

    return {name: getattr(rdt.transformers, name) for name in SUPPORTED}


def _init_parameters(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args",
                                                                                "kwargs")]


def _is_plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return isinstance(value, _PLAIN)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def describe(transformer: Any, where: str) -> dict[str, Any] | None:
    """``{'class_name', 'parameters'}`` of an rdt transformer object; None stays None."""
    if transformer is None:
        return None
    classes = rdt_classes()
    name = type(transformer).__name__
    if classes.get(name) is not type(transformer):
        raise SynthesizerInputError(
            f"Column {where}: the transformer {name} is not supported; expected None or one of "
            f"rdt's {', '.join(SUPPORTED)}.")
    parameters = {p: getattr(transformer, p) for p in _init_parameters(type(transformer))
                  if hasattr(transformer, p)}
    if name == "RegexGenerator" and not isinstance(parameters.get("regex_format"), str):
        raise SynthesizerInputError(f"Column {where}: RegexGenerator needs a regex_format.")
    if parameters.get("function_kwargs"):
        raise SynthesizerInputError(
            f"Column {where}: {name}(function_kwargs=...) is not supported: hma_db calls "
            f"Faker's {parameters.get('function_name')}() without arguments.")
    odd = sorted(p for p, v in parameters.items() if not _is_plain(v))
    if odd:
        raise SynthesizerInputError(
            f"Column {where}: the {name} parameters {odd} are not plain values (text, numbers, "
            "booleans, lists, dicts); the model file keeps parameters as such values.")
    return {"class_name": name, "parameters": _plain(parameters)}


def check_spec(spec: Any, where: str) -> dict[str, Any] | None:
    """A transformer spec read from a model file, refused unless it names a supported class
    and holds plain parameters (a model file is untrusted input)."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("class_name") not in SUPPORTED \
            or not isinstance(spec.get("parameters"), dict) or not _is_plain(spec["parameters"]):
        raise SynthesizerInputError(f"Column {where}: the saved transformer {spec!r} is not one "
                                    f"of {', '.join(SUPPORTED)} with plain parameters.")
    return {"class_name": spec["class_name"], "parameters": _plain(spec["parameters"])}


def build(spec: dict[str, Any] | None) -> Any:
    """The (unfitted) rdt object a spec describes; parameters this rdt release does not know
    are left out (a model saved with another release)."""
    if spec is None:
        return None
    cls = rdt_classes()[spec["class_name"]]
    known = set(_init_parameters(cls))
    return cls(**{k: v for k, v in spec["parameters"].items() if k in known})


def _one_locale(locales: Any) -> str | None:
    if isinstance(locales, str):
        return locales
    if isinstance(locales, list) and len(locales) == 1 and isinstance(locales[0], str):
        return locales[0]
    return None  # several or none: the synthesizer's locales


def column_settings(spec: dict[str, Any] | None, column_meta: dict[str, Any],
                    where: str, unique: bool = False) -> dict[str, Any]:
    """The column's metadata with the chosen transformer applied (a new dict); ``unique``: the
    column is an alternate key, whose Faker values stay unique."""
    meta = dict(column_meta)
    if spec is None:
        return meta
    name, params = spec["class_name"], spec["parameters"]
    for key in ("policy", "pii", "fake_unique", "pseudonymous"):
        meta.pop(key, None)
    if name in ("AnonymizedFaker", "PseudoAnonymizedFaker"):
        function = params.get("function_name") or "lexify"
        locale = _one_locale(params.get("locales"))
        meta["policy"] = f"fake:{function}" + (f":{locale}" if locale else "")
        if meta.get("sdtype") in ("numerical", "datetime", "boolean", "id"):
            meta["sdtype"] = "unknown"
        meta["fake_unique"] = params.get("cardinality_rule") == "unique" or \
            bool(params.get("enforce_uniqueness"))
        meta["pseudonymous"] = name == "PseudoAnonymizedFaker"
        if unique:  # an alternate key takes no policy: unique personal data of that method
            for key in ("policy", "fake_unique", "pseudonymous"):
                meta.pop(key)
            meta.update(sdtype=function, pii=True)
    elif name == "RegexGenerator":
        meta.update(sdtype="id", regex_format=params["regex_format"])
    elif name == "FloatFormatter":
        meta.update(sdtype="numerical", enforce_rounding=bool(params.get("learn_rounding_scheme")),
                    enforce_min_max_values=bool(params.get("enforce_min_max_values")))
    elif name in ("UniformEncoder", "LabelEncoder"):
        meta.update(sdtype="categorical", ordered_categories=name == "LabelEncoder")
    elif name == "UnixTimestampEncoder":
        meta.update(sdtype="datetime",
                    enforce_min_max_values=bool(params.get("enforce_min_max_values")))
        if params.get("datetime_format"):
            meta["datetime_format"] = params["datetime_format"]
    return meta


def _faker_module(function: str) -> str:
    """rdt's ``provider_name`` of a Faker method: the provider module that defines it."""
    from faker import Faker

    method = getattr(Faker(), function, None)
    module = getattr(getattr(method, "__self__", None), "__module__", "") or ""
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == ["faker", "providers"]:
        return parts[2]
    return "BaseProvider"


def learned_spec(column_spec: dict[str, Any], column_meta: dict[str, Any],
                 table_parameters: dict[str, Any]) -> dict[str, Any] | None:
    """The rdt transformer that does what hma_db learned for a column, as a spec; None for
    what rdt has no transformer for (foreign keys, values drawn apart, constants)."""
    role = column_spec.get("role")
    if role == "modeled":
        minmax = bool(column_meta.get("enforce_min_max_values",
                                      table_parameters.get("enforce_min_max_values", True)))
        if column_spec.get("kind") == "categorical":
            name = "LabelEncoder" if column_meta.get("ordered_categories") else "UniformEncoder"
            return {"class_name": name, "parameters": {}}
        if column_meta.get("sdtype") == "datetime":
            return {"class_name": "UnixTimestampEncoder", "parameters": {
                "datetime_format": column_meta.get("datetime_format"),
                "enforce_min_max_values": minmax}}
        rounding = column_meta.get("enforce_rounding", table_parameters.get("enforce_rounding",
                                                                             True))
        return {"class_name": "FloatFormatter", "parameters": {
            "learn_rounding_scheme": bool(rounding), "enforce_min_max_values": minmax}}
    if role == "personal" and isinstance(column_spec.get("provider"), str):
        function = column_spec["provider"]
        return {"class_name": "AnonymizedFaker", "parameters": {
            "provider_name": _faker_module(function), "function_name": function}}
    if role in ("primary_key", "key") and isinstance(column_meta.get("regex_format"), str):
        return {"class_name": "RegexGenerator",
                "parameters": {"regex_format": column_meta["regex_format"]}}
    return None
