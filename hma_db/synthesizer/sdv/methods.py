"""SDV's synthesizer methods that hma_db answers with its own machinery: the columns'
transformers (``get_transformers``, ``update_transformers``, ``auto_assign_transformers``,
``set_address_columns``) and SDV's older dictionary form of constraints with custom classes
(``add_custom_constraint_class``, ``load_custom_constraint_classes``).

:class:`SDVMethods` is a base class of :class:`~hma_db.HMASynthesizer`; it reads only the
synthesizer's public face (``metadata``, ``table_transformers``, ``get_table_parameters``,
``preprocess``), so the two stay apart.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import warnings
from pathlib import Path
from typing import Any

from hma_db.errors import SynthesizerInputError
from hma_db.schema import Metadata
from hma_db.synthesizer.sdv import transformers as specs
from hma_db.transform import unique_columns

REFIT_WARNING = "For this change to take effect, please refit the synthesizer using `fit`."
NO_TRANSFORMERS = ("No transformers were returned in 'get_transformers'. Use "
                   "'auto_assign_transformers' or 'fit' to create them.")
ADDRESS_LEVELS = ("full", "street_address")


class SDVMethods:
    """Mixed into :class:`~hma_db.HMASynthesizer` (see the module docstring)."""

    metadata: Metadata

    def __init__(self) -> None:
        self._transformer_choices: dict[str, dict[str, dict | None]] = {}
        self._custom_classes: dict[str, type] = {}

    # ------------------------------------------------------------------- transformers
    def update_transformers(self, table_name: str,
                            column_name_to_transformer: dict[str, Any]) -> None:
        """Choose how columns of a table are generated, with rdt transformer objects.

        Supported: rdt's ``AnonymizedFaker``, ``PseudoAnonymizedFaker``, ``RegexGenerator``,
        ``FloatFormatter``, ``UniformEncoder``, ``LabelEncoder``, ``UnixTimestampEncoder``
        (what each becomes: :mod:`hma_db.synthesizer.sdv.transformers`), or None for
        hma_db's own choice. Applied from the next ``fit``; saved with the model as the class
        name and parameters.

        Raises:
            SynthesizerInputError: an unknown table or column, an unsupported transformer, or
                a transformer that makes no values on a key column.

        Example:
            >>> from rdt.transformers import AnonymizedFaker
            >>> synthesizer.update_transformers("guests", {
            ...     "guest_email": AnonymizedFaker(provider_name="internet",
            ...                                    function_name="email")})
        """
        columns = self.metadata.tables.get(table_name, {}).get("columns") if isinstance(
            table_name, str) else None
        if columns is None:
            raise SynthesizerInputError(f"Table '{table_name}' is not present in the metadata.")
        if not isinstance(column_name_to_transformer, dict):
            raise SynthesizerInputError("update_transformers takes {column name: transformer}.")
        keys = set(self.metadata.primary_key(table_name)) | set(
            self.metadata.foreign_key_columns(table_name))
        unique = unique_columns(self.metadata, table_name) - keys
        chosen = {}
        for column, transformer in column_name_to_transformer.items():
            where = f"'{table_name}.{column}'"
            if column not in columns:
                raise SynthesizerInputError(f"Column {where} is not in the metadata.")
            spec = specs.describe(transformer, where)
            if column in keys and spec is not None and spec["class_name"] != "RegexGenerator":
                raise SynthesizerInputError(
                    f"Column '{column}' is a key. It cannot be preprocessed using the "
                    f"'{spec['class_name']}' transformer; hma_db generates keys (a "
                    "RegexGenerator sets their shape).")
            if column in unique and spec is not None and spec["class_name"] not in (
                    "RegexGenerator", "AnonymizedFaker"):
                raise SynthesizerInputError(
                    f"Column '{column}' is an alternate key. It cannot be preprocessed using the "
                    f"'{spec['class_name']}' transformer; its values are generated unique (an "
                    "AnonymizedFaker or a RegexGenerator sets how).")
            chosen[column] = spec
        self._transformer_choices.setdefault(table_name, {}).update(chosen)
        if self.table_transformers:
            warnings.warn(REFIT_WARNING, UserWarning, stacklevel=2)

    def get_transformers(self, table_name: str) -> dict[str, Any]:
        """``{column: rdt transformer or None}`` in the metadata's order, after ``fit`` or
        ``auto_assign_transformers``: the chosen transformers, and for the other columns the
        rdt transformer that does what hma_db learned (None where rdt has none: foreign keys,
        values drawn apart from the model, constants). The objects are new and unfitted."""
        if table_name not in self.metadata.tables:
            raise SynthesizerInputError(f"Table '{table_name}' is not present in the metadata.")
        fitted = self.table_transformers.get(table_name)
        if fitted is None:
            raise ValueError(NO_TRANSFORMERS)
        learned = fitted.to_dict()["columns"]
        chosen = self._transformer_choices.get(table_name, {})
        params = self.get_table_parameters(table_name)["synthesizer_parameters"]
        out = {}
        for column, meta in self.metadata.tables[table_name]["columns"].items():
            if column in chosen:
                out[column] = specs.build(chosen[column])
            elif column in learned:
                view = specs.column_settings(None, meta, column)
                out[column] = specs.build(specs.learned_spec(learned[column], view, params))
        return out

    def auto_assign_transformers(self, data: dict) -> None:
        """Learn every column's treatment from ``data`` without fitting the model, so that
        ``get_transformers`` answers (SDV's method; hma_db runs ``preprocess``)."""
        unknown = sorted(set(data) - set(self.metadata.tables)) if isinstance(data, dict) else []
        if unknown:
            raise SynthesizerInputError(f"Table '{unknown[0]}' is not present in the metadata.")
        self.preprocess(data)

    def set_address_columns(self, table_name: str, column_names: tuple | list,
                            anonymization_level: str = "full") -> None:
        """Say that columns of a table form one address (SDV's method, which SDV deprecates for
        ``Metadata.add_column_relationship``): hma_db's Faker values of one row then agree
        (a city in its state, a postcode of the state). Only ``'full'`` anonymization exists:
        no real address part is kept."""
        warnings.warn("`set_address_columns` is deprecated. Please add these columns directly "
                      "to your metadata using `add_column_relationship`.", FutureWarning,
                      stacklevel=2)
        if anonymization_level not in ADDRESS_LEVELS:
            raise SynthesizerInputError(
                f"Invalid value '{anonymization_level}' for parameter 'anonymization_level'. "
                f"Please provide one of {list(ADDRESS_LEVELS)}.")
        if anonymization_level != "full":
            raise SynthesizerInputError(
                "anonymization_level 'street_address' keeps real city, state and postcode "
                "values; hma_db generates every part of an address ('full').")
        self.metadata.add_column_relationship("address", list(column_names),
                                              table_name=table_name)

    def transformer_view(self, metadata: Metadata) -> Metadata:
        """``metadata`` with the chosen transformers applied to its columns (a copy; the
        synthesizer's metadata is left as given). Used by ``preprocess``."""
        if not any(self._transformer_choices.values()):
            return metadata
        view = metadata.copy()
        for table, chosen in self._transformer_choices.items():
            columns, unique = view.tables[table]["columns"], unique_columns(view, table)
            for column, spec in chosen.items():
                columns[column] = specs.column_settings(spec, columns[column],
                                                        f"'{table}.{column}'", column in unique)
        return view

    def transformer_choices(self) -> dict[str, dict[str, dict | None]]:
        """The chosen transformers as plain data (kept in the model file)."""
        return copy.deepcopy({t: c for t, c in self._transformer_choices.items() if c})

    def restore_transformer_choices(self, saved: Any) -> None:
        """Take the chosen transformers back from a model file, checking each (untrusted)."""
        if not saved:
            return
        if not isinstance(saved, dict):
            raise SynthesizerInputError("The saved transformers are not {table: {column: ...}}.")
        for table, chosen in saved.items():
            columns = self.metadata.tables.get(table, {}).get("columns", {})
            if not isinstance(chosen, dict) or not set(chosen) <= set(columns):
                raise SynthesizerInputError(f"The saved transformers of table {table!r} name "
                                            "columns the metadata does not have.")
            self._transformer_choices[table] = {
                c: specs.check_spec(s, f"'{table}.{c}'") for c, s in chosen.items()}

    # ------------------------------------------------------- SDV's dictionary constraints
    def add_custom_constraint_class(self, class_object: type, class_name: str) -> None:
        """Name a constraint class for SDV's older dictionary form
        ``{'constraint_class': NAME, 'table_name': ..., 'constraint_parameters': {...}}``."""
        if not isinstance(class_name, str) or not inspect.isclass(class_object):
            raise SynthesizerInputError("add_custom_constraint_class takes a class and its name.")
        self._custom_classes[class_name] = class_object

    def load_custom_constraint_classes(self, filepath: str | Path, class_names: list[str]) -> None:
        """Import the named constraint classes from a Python file the caller names (this runs
        that file, as SDV does; a model file never names one)."""
        path = Path(filepath)
        if not path.is_file():
            raise SynthesizerInputError(f"No such file: '{path}'.")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        missing = [name for name in class_names if not hasattr(module, name)]
        if missing:
            raise SynthesizerInputError(
                f"The provided file '{path}' does not contain a class named {missing}.")
        for name in class_names:
            self.add_custom_constraint_class(getattr(module, name), name)

    def constraint_objects(self, constraints: list) -> list:
        """SDV's dictionary constraints as objects: a name added with
        ``add_custom_constraint_class`` builds that class, any other name hma_db's class of
        that name; objects pass as they are."""
        from hma_db.schema import constraint_from_dict

        out = []
        for item in constraints:
            if not isinstance(item, dict):
                out.append(item)
                continue
            cls = self._custom_classes.get(item.get("constraint_class"))
            if cls is None:
                out.append(constraint_from_dict(item))
                continue
            params = dict(item.get("constraint_parameters") or {})
            accepted = inspect.signature(cls).parameters
            if "table_name" in accepted and "table_name" not in params:
                params["table_name"] = item.get("table_name")
            constraint = cls(**params)
            if getattr(constraint, "table_name", None) is None and item.get("table_name"):
                constraint.table_name = item["table_name"]
            out.append(constraint)
        return out
