"""The synthesizer's business rules: declared constraints (hma_db's or SDV's own objects),
programmable ones, and rules found in the data, fitted per table into the steps of
:mod:`hma_db.synthesizer.constraints`.

Rules found in the data (:mod:`hma_db.schema.rules.found`, sums and key paths) are kept by
default like declared ones (``HMASynthesizer(find_rules=False)`` turns it off).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from hma_db.errors import SynthesizerInputError
from hma_db.schema import (
    CONSTRAINT_CLASSES,
    Constraint,
    FixedCombinations,
    Inequality,
    PathAgreement,
    ProgrammableConstraint,
    SingleTableProgrammableConstraint,
    constraint_from_dict,
    find_formulas,
    find_inequalities,
    find_paths,
    find_sums,
    key_columns,
    relationship_name,
    rules_from_check,
    table_policy,
)
from hma_db.synthesizer.constraints import TableRules, check_declared, refuse_broken

logger = logging.getLogger(__name__)

# Where SDV's own constraint objects keep each parameter (private attributes of SDV's classes,
# read from the object's __dict__ since SDV offers no public accessor).
SDV_ATTRIBUTES = {
    "Inequality": {"low_column_name": "_low_column_name", "high_column_name": "_high_column_name",
                   "strict_boundaries": "_strict_boundaries"},
    "Range": {"low_column_name": "_low_column_name", "middle_column_name": "_middle_column_name",
              "high_column_name": "_high_column_name", "strict_boundaries": "_strict_boundaries"},
    "FixedCombinations": {"column_names": "_column_names"},
    "OneHotEncoding": {"column_names": "_column_names"},
    "FixedIncrements": {"column_name": "_column_name", "increment_value": "_increment_value"},
}


def as_constraint(obj):
    """An hma_db constraint from one of hma_db's, SDV's, or a programmable object."""
    if isinstance(obj, (Constraint, SingleTableProgrammableConstraint)):
        return obj
    name, module = type(obj).__name__, type(obj).__module__ or ""
    if module.split(".")[0] == "sdv" and name in SDV_ATTRIBUTES:
        state = vars(obj)
        params = {ours: state.get(theirs, state.get(ours))
                  for ours, theirs in SDV_ATTRIBUTES[name].items()}
        return constraint_from_dict({"constraint_class": name, "table_name": state.get("table_name"),
                                     "constraint_parameters": params})
    if all(callable(getattr(obj, m, None)) for m in ("transform", "reverse_transform", "is_valid")):
        return obj  # programmable, duck-typed as SDV's own programmable classes are
    raise SynthesizerInputError(
        f"{obj!r} is not a constraint: expected one of {', '.join(CONSTRAINT_CLASSES)}, SDV's "
        "classes of those names, or a programmable constraint (transform, reverse_transform, "
        "is_valid).")


def is_multi_table(constraint) -> bool:
    """A programmable constraint on ``{table: DataFrame}`` rather than one table (SDV's
    ``sdv.cag.ProgrammableConstraint`` too, which may name a table it works on)."""
    sdv_names = {c.__name__ for c in type(constraint).__mro__ if c.__module__.startswith("sdv.")}
    # SDV's single-table class derives from its multi-table one: the narrower name decides.
    sdv_multi = "ProgrammableConstraint" in sdv_names \
        and "SingleTableProgrammableConstraint" not in sdv_names
    return isinstance(constraint, ProgrammableConstraint) or sdv_multi or (
        not isinstance(constraint, (Constraint, SingleTableProgrammableConstraint))
        and getattr(constraint, "table_name", None) is None)


class TableConstraints:
    """One table's fitted rules: the built-in steps, then its programmable constraints."""

    def __init__(self, rules: TableRules | None, programmable: list):
        self.rules, self.programmable = rules, list(programmable)

    def fit_transform(self, frame: pd.DataFrame, metadata, bounded: bool = True):
        """Fit on the real table; the frame and the metadata the transformer sees."""
        if self.rules is not None:
            frame = self.rules.fit_transform(frame, metadata, bounded)
            metadata = self.rules.updated_metadata(metadata)
        for constraint in self.programmable:
            constraint.fit(frame, metadata)
            metadata = constraint.get_updated_metadata(metadata)
            frame = constraint.transform(frame)
        return frame, metadata

    def metadata(self, metadata):
        if self.rules is not None:
            metadata = self.rules.updated_metadata(metadata)
        for constraint in self.programmable:
            metadata = constraint.get_updated_metadata(metadata)
        return metadata

    def reverse(self, frame: pd.DataFrame) -> pd.DataFrame:
        for constraint in reversed(self.programmable):
            frame = constraint.reverse_transform(frame)
        return frame if self.rules is None else self.rules.reverse(frame)


def table_checks(metadata, table: str) -> list:
    """What each of the source database's CHECKs on ``table`` became
    (:class:`~hma_db.schema.CheckRules`: its rules, and whether they say all it says)."""
    sql = metadata.sql_metadata
    tables = [] if sql is None else [t for t in sql.tables.values() if t.name == table]
    columns = list(metadata.tables[table]["columns"])
    return [rules_from_check(str(c.sqltext), columns, table, c.name)
            for sql_table in tables[:1] for c in sorted(sql_table.constraints, key=str)
            if isinstance(c, sa.CheckConstraint)]


def check_rules(metadata, table: str) -> list[Constraint]:
    """The rules the source database's CHECKs on ``table`` state (those that translate)."""
    keys = set(metadata.primary_key(table)) | set(metadata.foreign_key_columns(table))
    return [rule for check in table_checks(metadata, table) for rule in check.rules
            if not set(rule.columns()) & keys]


def untranslated_checks(metadata) -> dict[str, list]:
    """Per modeled table, its CHECKs that do not wholly translate into rules: the target
    database evaluates them on the sampled rows (or a warning names them)."""
    out = {}
    for table in sorted(metadata.tables):
        if table_policy(metadata.tables, table) == "model":
            left = [c for c in table_checks(metadata, table) if not c.translated]
            if left:
                out[table] = left
    return out


def rule_lines(metadata, found: list | None = None, skip: frozenset[str] = frozenset()
               ) -> list[str]:
    """The rules a run keeps, one line each, for ``reflect`` and ``plan``: the source's CHECKs
    (as rules, or evaluated by the target), then ``found`` (a fitted model's rules found in
    the data; None: not known before the fit, when the proposals ``reflect`` found in its
    sample of the rows are listed). Labels in ``skip`` are marked left out."""
    lines = []
    for table in sorted(metadata.tables):
        if table_policy(metadata.tables, table) != "model":
            continue
        for check in table_checks(metadata, table):
            lines += [f"{rule_label(r)} (a CHECK of the source)"
                      + ("  [left out: skip_rules]" if rule_label(r) in skip else "")
                      for r in check.rules]
            if not check.translated:
                lines.append(f"{table}: {check.label()} (evaluated by the target database on "
                             "the sampled rows)")
    if found is None:
        declared = {rule_label(r) for t in metadata.tables for c in table_checks(metadata, t)
                    for r in c.rules}
        lines += [f"{rule_label(r)} (proposed: found in a sample of the rows; kept if every "
                  "row holds it at fit)" + ("  [left out: skip_rules]" if rule_label(r) in skip
                                           else "")
                  for r in metadata.proposed_rules if rule_label(r) not in declared]
        lines.append("rules found in the data (on every row; also sums over children and two key "
                     "paths): at fit")
    else:
        lines += [f"{rule_label(r)} (found in the data)" for r in found
                  if getattr(r, "origin", "") == "data"]
    return lines


def known_rules(metadata, data: dict[str, pd.DataFrame]) -> list[Constraint]:
    """The rules a synthesizer fitted on ``data`` would find: each modeled table's CHECKs that
    translate, the inequalities and row formulas that hold in every row, then the parent sums
    and path agreements across tables (for reports)."""
    rules: list[Constraint] = []
    modeled = {t for t in metadata.tables
               if t in data and table_policy(metadata.tables, t) == "model"}
    for table in sorted(modeled):
        checks = check_rules(metadata, table)
        rules += checks + _new(find_inequalities(metadata, table, data[table]), checks)
    return rules + find_formulas(metadata, data, modeled) + find_sums(metadata, data, modeled) \
        + find_paths(metadata, {t: data[t] for t in modeled})


def _new(rules: list[Inequality], known: list) -> list[Inequality]:
    pairs = {(c.low_column_name, c.high_column_name) for c in known if isinstance(c, Inequality)}
    return [r for r in rules if not isinstance(r, Inequality)
            or (r.low_column_name, r.high_column_name) not in pairs]


def _held(checks: list, frame: pd.DataFrame) -> list:
    """The CHECK rules the real rows keep; a CHECK comparing two columns that they break is
    refused, one on a single column is left out with a log line (SQLite compares text and
    numbers its own way, so a rule read from its CHECK may not hold as read)."""
    kept = []
    for rule in checks:
        if isinstance(rule, Inequality):
            refuse_broken(rule, frame)
        elif not rule.is_valid(frame).to_numpy(dtype=bool).all():
            logger.info("table %s: CHECK rule %s does not hold in the real rows; left out",
                        rule.table_name, rule.describe())
            continue
        kept.append(rule)
    return kept


def ruled_columns(rules: list) -> dict[str, set[str]]:
    """``{table: columns}`` each rule keeps (a parent sum's child columns stay free: the sum
    is recomputed from them); a programmable rule puts :data:`ANY_TABLE` in its table's set,
    or under :data:`ANY_TABLE` when it works on every table."""
    out: dict[str, set[str]] = {}
    for rule in rules:
        table, columns = getattr(rule, "table_name", None), getattr(rule, "columns", None)
        if isinstance(table, str) and callable(columns):
            out.setdefault(table, set()).update(columns())
        elif not isinstance(rule, Constraint):  # programmable: whatever columns its code uses
            out.setdefault(table if isinstance(table, str) else ANY_TABLE, set()).add(ANY_TABLE)
    return out


ANY_TABLE = "*"  # in ruled_columns: a programmable rule, on one table's columns or on all


def rule_label(rule) -> str:
    """How a rule is named to switch it off (``skip_rules``): ``"Track: Bytes > Milliseconds"``."""
    return f"{rule.table_name}: {rule.describe()}"


def rule_labels(rules: list) -> list[str]:
    """The labels of the found rules among ``rules``, to pass to ``skip_rules``.

    Example:
        >>> rule_labels(synthesizer.get_constraints())
        ['Invoice: Invoice.Total = sum(InvoiceLine.UnitPrice * InvoiceLine.Quantity)', ...]
    """
    return [rule_label(r) for r in rules if getattr(r, "found", False)]


def check_skip_rules(skip) -> frozenset[str]:
    """The labels of found rules to leave out (see :func:`rule_label`)."""
    if skip is None:
        return frozenset()
    if isinstance(skip, str) or not all(isinstance(s, str) for s in skip):
        raise SynthesizerInputError(
            f"skip_rules must be a list of rule labels such as 'Track: Bytes > Milliseconds' "
            f"(as get_constraints() lists them); found {skip!r}.")
    return frozenset(skip)


def unknown_skips(skip: frozenset[str], found: list) -> list[str]:
    """The labels of ``skip`` that name no rule the last fit found (a typo, or data changed)."""
    return sorted(skip - {rule_label(r) for r in found})


def fit_table(metadata, table: str, frame: pd.DataFrame, declared: list, find: bool,
              skip: frozenset[str] = frozenset()
              ) -> tuple[list[Inequality], TableConstraints | None, list]:
    """A table's found rules (from its CHECKs, then its data), its fitted constraints (None:
    it has none) and the found rules left out by ``skip``; refuses a declared or CHECK rule
    its real rows break."""
    mine = [c for c in declared if getattr(c, "table_name", None) == table
            and not is_multi_table(c)]
    builtin = [c for c in mine if isinstance(c, Constraint)]
    checks = _new(check_rules(metadata, table), builtin)  # the target would refuse a break
    for constraint in builtin:
        refuse_broken(constraint, frame)
    checks = _held(checks, frame)
    rewritten = {col for c in builtin if not isinstance(c, Inequality) for col in c.columns()}
    checks = [c for c in checks if not (isinstance(c, Inequality) and set(c.columns()) & rewritten)]
    found = find_inequalities(metadata, table, frame, rewritten) if find else []
    found = checks + _new(found, builtin + checks)
    skipped = [r for r in found if rule_label(r) in skip]
    found = [r for r in found if rule_label(r) not in skip]
    rules = builtin + found
    programmable = [c for c in mine if not isinstance(c, Constraint)]
    if not rules and not programmable:
        return found, None, skipped
    table_rules = TableRules.build(table, rules, list(frame.columns)) if rules else None
    return found, TableConstraints(table_rules, programmable), skipped


def check_all(metadata, constraints: list) -> list:
    """Each constraint as an hma_db object, checked against the metadata."""
    out = [as_constraint(c) for c in constraints]
    for constraint in out:
        if isinstance(constraint, Constraint):
            check_declared(metadata, constraint)
        elif not is_multi_table(constraint) and constraint.table_name not in metadata.tables:
            raise SynthesizerInputError(
                f"Programmable constraint {type(constraint).__name__} names the table "
                f"{constraint.table_name!r}; the metadata has: {', '.join(sorted(metadata.tables))}.")
    return out


def fit_multi_table(metadata, data: dict[str, pd.DataFrame], constraints: list):
    """Fit the multi-table programmable constraints in order on the real tables; the tables
    and the metadata the per-table steps then see. Each must keep every table and column name
    (its values and sdtypes may change), since sampled tables are decoded one by one before
    its ``reverse_transform`` gets them."""
    view = metadata
    for constraint in constraints:
        constraint.fit(data, view)
        view = constraint.get_updated_metadata(view)
        out = constraint.transform(data)
        renamed = sorted(t for t in data
                         if t not in out or list(out[t].columns) != list(data[t].columns))
        if renamed:
            raise SynthesizerInputError(
                f"{type(constraint).__name__}.transform changed the tables or columns of "
                f"{', '.join(renamed)}; a multi-table constraint may change values only (write "
                "a SingleTableProgrammableConstraint to reshape one table).")
        data = out
    return data, view


def reverse_multi_table(constraints: list, chunk: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A sampled chunk (whole families, see :mod:`hma_db.synthesizer.chunks`) turned back."""
    for constraint in reversed(constraints):
        chunk = constraint.reverse_transform(chunk)
    return chunk


def constraint_copies(constraints: list) -> list:
    """Copies of the predefined constraints; programmable ones are the user's own objects."""
    return [copy.deepcopy(c) if isinstance(c, Constraint) else c for c in constraints]


def path_rules(metadata, relationships: dict[str, dict], skip: frozenset[str] = frozenset()
               ) -> tuple[list, list]:
    """The agreements the model found along two foreign-key paths (single-column keys), as
    :class:`~hma_db.schema.PathAgreement` rules, and those ``skip`` leaves out (the model then
    forgets them: sampling no longer keeps them)."""
    by_name = {relationship_name(r): r for r in metadata.relationships}
    found, skipped = [], []
    for name, rel in sorted(relationships.items()):
        agree = rel.get("agrees")
        if not agree or not {name, agree["via"], agree["up"]} <= set(by_name):
            continue
        direct, via, up = by_name[name], by_name[agree["via"]], by_name[agree["up"]]
        keys = [key_columns(r[k]) for r in (direct, via, up)
                for k in ("child_foreign_key", "parent_primary_key")]
        if any(len(k) != 1 for k in keys):
            continue
        rule = PathAgreement(keys[0][0], keys[2][0], via["parent_table_name"], keys[3][0],
                             keys[4][0], table_name=direct["child_table_name"])
        rule.origin = "data"
        if rule_label(rule) in skip:
            del rel["agrees"]
            skipped.append(rule)
        else:
            found.append(rule)
    return found, skipped


def invalid_rows(constraints: list, data: dict[str, pd.DataFrame],
                 fitted: dict[str, TableConstraints]) -> list[tuple[Any, int]]:
    """``(constraint, rows that break it)`` for each constraint some rows of ``data`` break."""
    broken = []
    for constraint in constraints:
        if is_multi_table(constraint):
            valid = constraint.is_valid(data)
            count = sum(int((~np.asarray(v, dtype=bool)).sum()) for v in valid.values())
        elif constraint.table_name not in data:
            continue
        elif getattr(constraint, "across_tables", False):
            if not set(constraint.tables_read()) <= set(data):
                continue
            count = int((~constraint.is_valid_tables(data).to_numpy(dtype=bool)).sum())
        else:
            frame = data[constraint.table_name]
            if isinstance(constraint, FixedCombinations):
                constraint = copy.copy(constraint)
                fitted_table = fitted.get(constraint.table_name)
                rules = fitted_table.rules if fitted_table is not None else None
                constraint.combinations = None if rules is None else \
                    rules.combinations(constraint.column_names)
            count = int((~np.asarray(constraint.is_valid(frame), dtype=bool)).sum())
        if count:
            broken.append((constraint, count))
    return broken
