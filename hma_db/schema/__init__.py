"""The schema stage: what a database looks like, as data.

Takes in a metadata dict (SDV's JSON layout) or DataFrames to detect it from; gives out
:class:`Metadata` (tables, columns and sdtypes, keys, relationships, masking policies, the physical SQL
schema), the
foreign-key graph, checks of data against the metadata, personal-data guesses, SQL types mapped to
sdtypes and the SQL schema as plain JSON. Every later stage reads it; it reads no database.
"""

from hma_db.schema.constraints import (
    CONSTRAINT_CLASSES,
    Constraint,
    FixedCombinations,
    FixedIncrements,
    Inequality,
    OneHotEncoding,
    ProgrammableConstraint,
    Range,
    SingleTableProgrammableConstraint,
    as_numbers,
    at_least,
    constraint_from_dict,
    load_constraints,
)
from hma_db.schema.graph import relationship_name
from hma_db.schema.keys import key_columns
from hma_db.schema.metadata import BASIC_SDTYPES, METADATA_SPEC_VERSION, Metadata
from hma_db.schema.pii import (
    DATE_PII,
    faker_method,
    guess_from_name,
    guess_from_values,
    is_faker_provider,
)
from hma_db.schema.policies import (
    FROM_SOURCE,
    HASH_KEY_VARIABLE,
    POLICIES,
    TABLE_POLICIES,
    Policy,
    apply_policies,
    check_where,
    fake_provider,
    parse_policy,
    reference_tables,
    split_column,
    table_policy,
)
from hma_db.schema.rules import (
    AllowedValues,
    CheckRules,
    ParentSum,
    PathAgreement,
    RowFormula,
    ScalarInequality,
    ScalarRange,
    find_formulas,
    find_sums,
    rules_from_check,
)
from hma_db.schema.simplify import simplify_schema
from hma_db.schema.sql_json import schema_from_dict, schema_to_dict
from hma_db.schema.sqltypes import (
    DATE,
    TEXT,
    RawType,
    allowed_values_from_check,
    base_type,
    domain_checks,
    is_geometry,
    is_native_geometry,
    json_checked_columns,
    set_width,
    sqlite_declared_type,
    type_options,
)
from hma_db.schema.values import from_json, restore, to_json, value_kind

__all__ = [
    "AllowedValues",
    "CheckRules",
    "ParentSum",
    "PathAgreement",
    "RowFormula",
    "ScalarInequality",
    "ScalarRange",
    "find_formulas",
    "find_sums",
    "rules_from_check",
    "CONSTRAINT_CLASSES",
    "Constraint",
    "FixedCombinations",
    "FixedIncrements",
    "Inequality",
    "OneHotEncoding",
    "ProgrammableConstraint",
    "Range",
    "SingleTableProgrammableConstraint",
    "as_numbers",
    "at_least",
    "constraint_from_dict",
    "load_constraints",
    "BASIC_SDTYPES",
    "DATE",
    "DATE_PII",
    "FROM_SOURCE",
    "HASH_KEY_VARIABLE",
    "METADATA_SPEC_VERSION",
    "Metadata",
    "POLICIES",
    "Policy",
    "TABLE_POLICIES",
    "RawType",
    "TEXT",
    "allowed_values_from_check",
    "apply_policies",
    "base_type",
    "check_where",
    "domain_checks",
    "fake_provider",
    "faker_method",
    "from_json",
    "guess_from_name",
    "guess_from_values",
    "is_faker_provider",
    "is_geometry",
    "is_native_geometry",
    "json_checked_columns",
    "key_columns",
    "parse_policy",
    "reference_tables",
    "relationship_name",
    "restore",
    "schema_from_dict",
    "schema_to_dict",
    "set_width",
    "simplify_schema",
    "split_column",
    "sqlite_declared_type",
    "table_policy",
    "to_json",
    "type_options",
    "value_kind",
]
