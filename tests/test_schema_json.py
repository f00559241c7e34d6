"""schema_json: the reflected SQL schema through plain JSON, and JSON models that write the same
target tables as pickles."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE
from sqlalchemy.dialects import mysql, postgresql, sqlite

from hma_db import HMASynthesizer, ModelFileError, load_synthesizer, reflect
from hma_db.schema.sql_json import schema_from_dict, schema_to_dict
from hma_db.target.ddl import target_metadata

DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect(),
            "mysql": mysql.dialect()}


def _ddl_lines(md: sa.MetaData, dialect) -> list[str]:
    """The CREATE TABLE and CREATE INDEX statements as sorted lines: the order of the unnamed
    constraints within a table is not part of the schema."""
    statements = []
    try:
        for table in md.tables.values():
            statements.append(str(sa.schema.CreateTable(table).compile(dialect=dialect)))
            statements += [str(sa.schema.CreateIndex(i).compile(dialect=dialect))
                           for i in table.indexes]
    except sa.exc.SQLAlchemyError as exc:  # e.g. a PostgreSQL type spelled for SQLite
        return [f"error: {exc}"]
    return sorted(line.strip().rstrip(",") for s in statements for line in s.splitlines()
                  if line.strip())


def _round_trip(md: sa.MetaData) -> sa.MetaData:
    return schema_from_dict(json.loads(json.dumps(schema_to_dict(md))))


def assert_same_schema(metadata) -> None:
    """The schema rebuilt from JSON compiles to the same DDL as the reflected one, in every
    dialect, and the writer makes the same target tables from it."""
    md = metadata.sql_metadata
    back = _round_trip(md)
    assert sorted(back.tables) == sorted(md.tables)
    restored = metadata.copy()
    restored.sql_metadata = back
    for name, dialect in DIALECTS.items():
        assert _ddl_lines(back, dialect) == _ddl_lines(md, dialect), name
        tables = list(metadata.tables)
        assert _ddl_lines(target_metadata(restored, tables, name, None), dialect) == \
            _ddl_lines(target_metadata(metadata, tables, name, None), dialect), name
    for table in md.tables.values():
        for column in table.columns:
            twin = back.tables[table.key].c[column.name]
            where = f"{table.name}.{column.name}"
            assert repr(twin.type) == repr(column.type), where
            assert (twin.nullable, twin.primary_key, twin.autoincrement) == \
                (column.nullable, column.primary_key, column.autoincrement), where
            assert (twin.identity is None, twin.computed is None) == \
                (column.identity is None, column.computed is None), where
            assert str(getattr(twin.server_default, "arg", None)) == \
                str(getattr(column.server_default, "arg", None)), where


@pytest.mark.parametrize("path", [CHINOOK_SQLITE, NORTHWIND_SQLITE], ids=["chinook", "northwind"])
def test_sqlite_schemas_round_trip(path):
    assert_same_schema(reflect(f"sqlite:///{path}"))


@pytest.mark.postgres
def test_postgres_schemas_round_trip(postgres_databases, northwind_postgres):
    from test_reflect_postgres import PG_DDL  # enums, domains, identity, arrays, partitions...
    from test_write_postgres import KINDS_DDL  # one column of every type the writer handles

    for statements, table in (([PG_DDL], "Event"), (KINDS_DDL, "kinds")):
        url = postgres_databases.new("schema_json")
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        engine.dispose()
        metadata = reflect(url)
        assert table in metadata.tables
        assert_same_schema(metadata)
    assert_same_schema(reflect(northwind_postgres))


@pytest.mark.mysql
def test_mysql_schema_round_trips(mysql_databases):
    from test_reflect_mysql import MYSQL_DDL

    url = mysql_databases.new("schema_json")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in MYSQL_DDL:
            conn.exec_driver_sql(statement)
    engine.dispose()
    assert_same_schema(reflect(url))


def _employee(data: dict) -> dict:
    return next(t for t in data["tables"] if t["name"] == "Employee")


@pytest.mark.parametrize("change, message", [
    (lambda t: t["columns"][0]["type"].update(type="Popen", dialect="subprocess"),
     "not a column type a reflected schema holds"),
    (lambda t: t["columns"][0]["type"].update(type="MetaData", dialect=None),
     "not a column type a reflected schema holds"),
    (lambda t: t["columns"][0]["type"].update(type="__class__", dialect=None),
     "not a column type a reflected schema holds"),
    (lambda t: t["columns"][0]["type"].update(type="PickleType", dialect=None),
     "not a column type a reflected schema holds"),
    (lambda t: t["columns"][1]["type"]["args"].update(lenght=3), "arguments it does not take"),
    (lambda t: t["constraints"].append({"kind": "trigger", "name": "x"}), "unknown kind"),
    (lambda t: t["constraints"].append(
        {"kind": "foreign_key", "name": None, "columns": ["ReportsTo"], "table": "Nope",
         "referred_columns": ["Id"]}), "which the schema does not have"),
    (lambda t: t.update(dialect_kwargs={"engine": "x"}), "dialect options"),
    (lambda t: t.pop("columns"), "damaged"),
])
def test_a_damaged_or_tampered_schema_is_refused(change, message):
    data = schema_to_dict(reflect(f"sqlite:///{CHINOOK_SQLITE}").sql_metadata)
    change(_employee(data))
    with pytest.raises(ModelFileError, match=message):
        schema_from_dict(data)


# ------------------------------------------------------------------------------ model files
def _schema_and_rows(url: str) -> tuple[list[str], dict[str, pd.DataFrame]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        md = sa.MetaData()
        md.reflect(conn)
        rows = {t: pd.read_sql_table(t, conn) for t in md.tables}
    engine.dispose()
    return _ddl_lines(md, DIALECTS[engine.dialect.name]), rows


def _save_both(synthesizer: HMASynthesizer, tmp_path) -> list:
    synthesizer.save(tmp_path / "model.pkl")
    synthesizer.save(tmp_path / "model.json", format="json")
    return [tmp_path / "model.pkl", tmp_path / "model.json"]


def test_json_and_pickle_models_write_the_same_sqlite_tables(tmp_path):
    # The JSON model used to lose the SQL schema and fail on Employee.BirthDate (a Timestamp
    # bound to the TEXT column its sdtype fallback made).
    synthesizer = HMASynthesizer(reflect(f"sqlite:///{CHINOOK_SQLITE}"), verbose=False, seed=2)
    synthesizer.fit_database(f"sqlite:///{CHINOOK_SQLITE}")
    found = []
    for model in _save_both(synthesizer, tmp_path):
        target = f"sqlite:///{tmp_path / model.name}.sqlite"
        load_synthesizer(model).sample_to_database(target, scale=0.2)
        found.append(_schema_and_rows(target))
    (pickle_ddl, pickle_rows), (json_ddl, json_rows) = found
    assert json_ddl == pickle_ddl
    assert any(line.startswith('"BirthDate" DATETIME') for line in json_ddl)
    for table, frame in pickle_rows.items():
        pd.testing.assert_frame_equal(json_rows[table], frame)


def test_a_json_model_without_the_schema_still_writes_dates(tmp_path):
    """Models saved before the schema was kept: the sdtype fallback gives birth dates (personal
    data generated as dates) a DATETIME column."""
    synthesizer = HMASynthesizer(reflect(f"sqlite:///{CHINOOK_SQLITE}", include=["Employee"]),
                                 verbose=False, seed=2)
    synthesizer.fit_database(f"sqlite:///{CHINOOK_SQLITE}")
    synthesizer.save(tmp_path / "model.json", format="json")
    document = json.loads((tmp_path / "model.json").read_text())
    del document["synthesizer"]["sql_schema"]
    (tmp_path / "model.json").write_text(json.dumps(document))
    target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    assert load_synthesizer(tmp_path / "model.json").sample_to_database(target) == {"Employee": 8}
    ddl, rows = _schema_and_rows(target)
    assert '"BirthDate" DATETIME' in ddl and '"HireDate" DATETIME' in ddl
    assert rows["Employee"]["BirthDate"].notna().all()


@pytest.mark.postgres
def test_json_and_pickle_models_write_the_same_postgres_tables(chinook_postgres,
                                                              postgres_databases, tmp_path):
    synthesizer = HMASynthesizer(reflect(chinook_postgres), verbose=False, seed=4)
    synthesizer.fit_database(chinook_postgres)
    found = []
    for model in _save_both(synthesizer, tmp_path):
        target = postgres_databases.new(f"schema_json_{model.suffix[1:]}")
        load_synthesizer(model).sample_to_database(target, scale=0.1)
        found.append(_schema_and_rows(target))
    (pickle_ddl, pickle_rows), (json_ddl, json_rows) = found
    assert json_ddl == pickle_ddl
    assert "unit_price NUMERIC(10, 2) NOT NULL" in json_ddl
    for table, frame in pickle_rows.items():
        pd.testing.assert_frame_equal(json_rows[table], frame)
