"""Referentially closed subsets: every foreign key of the subset resolves inside it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE

from hma_db import reflect
from hma_db.errors import SynthesizerInputError
from hma_db.schema.metadata import key_columns
from hma_db.source.read import read_tables
from hma_db.source.subset import down_edges, read_subset


def assert_closed(metadata, data: dict[str, pd.DataFrame]) -> None:
    for rel in metadata.relationships:
        child = data[rel["child_table_name"]]
        parent = data[rel["parent_table_name"]]
        fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
        values = child[fk].dropna()
        found = pd.MultiIndex.from_frame(values).isin(pd.MultiIndex.from_frame(parent[pk]))
        assert found.all(), f"{rel}: {(~found).sum()} dangling references"


def assert_complete_children(metadata, full, data):
    """Every kept row of a parent followed down has all its children along the down edge."""
    edges = down_edges(metadata, metadata.row_counts)
    assert edges
    for child, rel in edges.items():
        fk, pk = rel["child_foreign_key"], rel["parent_primary_key"]
        kept = data[rel["parent_table_name"]][pk]
        if len(kept) == len(full[rel["parent_table_name"]]):
            continue  # a lookup table taken whole is not followed down
        expected = full[child][full[child][fk].isin(kept)]
        assert len(data[child][data[child][fk].isin(kept)]) == len(expected), rel


def test_chinook_subset_is_closed_and_keeps_every_child_of_a_kept_parent():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    data = read_subset(url, metadata, 3000, seed=3)
    assert_closed(metadata, data)
    total = sum(len(f) for f in data.values())
    assert 1000 < total < 0.5 * sum(metadata.row_counts.values())
    full = read_tables(url, metadata)
    assert_complete_children(metadata, full, data)
    assert metadata.row_counts["InvoiceLine"] == 2240  # the full counts stay recorded
    # Rows are the source's own, with the source's dtypes.
    for table, frame in data.items():
        assert list(frame.columns) == list(full[table].columns)
        kept = full[table].merge(frame, how="inner")
        assert len(kept) == len(frame), table


def test_subset_is_reproducible_with_a_seed_and_varies_without():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    first = read_subset(url, metadata, 2000, seed=11)
    again = read_subset(url, metadata, 2000, seed=11)
    for table in first:
        pd.testing.assert_frame_equal(first[table], again[table])


def test_northwind_subset_is_closed_with_its_self_reference():
    url = f"sqlite:///{NORTHWIND_SQLITE}"
    metadata = reflect(url)
    assert metadata.self_references()
    data = read_subset(url, metadata, 1500, seed=5)
    assert_closed(metadata, data)
    assert sum(len(f) for f in data.values()) < sum(metadata.row_counts.values())


def test_per_table_limits():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    data = read_subset(url, metadata, {"InvoiceLine": 500}, seed=2)
    assert_closed(metadata, data)
    assert 250 < len(data["InvoiceLine"]) < 1000
    assert len(data["Genre"]) == metadata.row_counts["Genre"]  # a lookup table, whole


CYCLE_DDL = [
    "CREATE TABLE dept (id INTEGER PRIMARY KEY, name TEXT, head_id INTEGER REFERENCES emp(id))",
    "CREATE TABLE emp (id INTEGER PRIMARY KEY, dept_id INTEGER NOT NULL REFERENCES dept(id), "
    "boss_id INTEGER REFERENCES emp(id), salary REAL)",
    "CREATE TABLE task (id INTEGER PRIMARY KEY, emp_id INTEGER NOT NULL REFERENCES emp(id), "
    "hours REAL)",
]


@pytest.fixture
def cycle_url(tmp_path):
    """dept <-> emp (a cycle through the nullable dept.head_id), emp.boss_id a self-reference
    forming long chains, and task under emp."""
    url = f"sqlite:///{tmp_path / 'cycle.sqlite'}"
    rng = np.random.default_rng(0)
    n_dept, n_emp = 200, 3000
    emp_dept = rng.integers(1, n_dept + 1, n_emp)
    boss = [None] + [int(b) for b in rng.integers(np.maximum(1, np.arange(2, n_emp + 1) - 40),
                                                  np.arange(2, n_emp + 1))]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for ddl in CYCLE_DDL:
            conn.exec_driver_sql(ddl)
        conn.execute(sa.text("INSERT INTO dept VALUES (:id, :name, :head)"),
                     [{"id": d, "name": f"d{d}", "head": int(rng.integers(1, n_emp + 1))}
                      for d in range(1, n_dept + 1)])
        conn.execute(sa.text("INSERT INTO emp VALUES (:id, :dept, :boss, :salary)"),
                     [{"id": i + 1, "dept": int(emp_dept[i]), "boss": boss[i], "salary": 1.0 * i}
                      for i in range(n_emp)])
        conn.execute(sa.text("INSERT INTO task VALUES (:id, :emp, :hours)"),
                     [{"id": i + 1, "emp": int(rng.integers(1, n_emp + 1)), "hours": 1.5}
                      for i in range(6000)])
    engine.dispose()
    return url


def test_cycle_and_self_reference_are_followed_to_a_closed_subset(cycle_url):
    metadata = reflect(cycle_url)
    assert metadata.cycles() and metadata.self_references()
    data = read_subset(cycle_url, metadata, 1000, seed=1)
    assert_closed(metadata, data)
    assert len(data["task"]) < 6000 and len(data["emp"]) < 3000


def test_max_rows_is_checked():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    with pytest.raises(SynthesizerInputError, match="max_rows"):
        read_subset(url, metadata, 0)
    with pytest.raises(SynthesizerInputError, match="Nope"):
        read_subset(url, metadata, {"Nope": 5})


def test_clone_fitted_on_a_subset_samples_the_full_row_counts(tmp_path):
    from hma_db import HMASynthesizer
    from hma_db.pipeline import clone

    source = f"sqlite:///{CHINOOK_SQLITE}"
    target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    result = clone(source, target, seed=4, max_rows=2500)
    metadata = reflect(source)
    assert result.rows == {t: metadata.row_counts[t] for t in result.rows}
    assert_closed(metadata, read_tables(target, reflect(target)))
    synthesizer = HMASynthesizer(metadata, seed=4, verbose=False)
    synthesizer.fit_database(source, max_rows={"InvoiceLine": 400})
    sampled = synthesizer.sample(scale=0.5)
    assert len(sampled["InvoiceLine"]) == 1120 and len(sampled["Track"]) == 1752


def test_job_files_and_the_command_line_take_max_rows(tmp_path):
    from click.testing import CliRunner

    from hma_db import load_synthesizer
    from hma_db.cli.main import cli
    from hma_db.errors import ConfigError
    from hma_db.jobs.file import parse_job

    job = parse_job('source = "a.sqlite"\ntarget = "b.sqlite"\nmax_rows = 5000\n')
    assert job.max_rows == 5000
    assert parse_job('source = "a"\ntarget = "b"\nmax_rows = { Invoice = 50 }\n').max_rows == {
        "Invoice": 50}
    with pytest.raises(ConfigError, match="max_rows"):
        parse_job('source = "a"\ntarget = "b"\nmax_rows = -3\n')
    model = tmp_path / "model.json"
    result = CliRunner().invoke(cli, ["fit", str(CHINOOK_SQLITE), "-o", str(model),
                                      "--max-rows", "2000", "--seed", "1"])
    assert result.exit_code == 0, result.output
    synthesizer = load_synthesizer(model)
    assert len(synthesizer.sample()["InvoiceLine"]) == 2240


def test_the_clone_command_takes_max_rows(tmp_path, caplog):
    """`hma-db clone --max-rows N`: a subset is read (the read lines say "of" the full count),
    the output has the source's row counts, and its foreign keys resolve."""
    import logging

    from click.testing import CliRunner

    from hma_db.cli.main import cli

    target = tmp_path / "out.sqlite"
    with caplog.at_level(logging.INFO, logger="hma_db.source.read"):
        result = CliRunner().invoke(cli, ["clone", str(CHINOOK_SQLITE), str(target),
                                          "--max-rows", "2000", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "read InvoiceLine: " in caplog.text and " of 2240 rows" in caplog.text
    written = reflect(f"sqlite:///{target}")
    back = read_tables(f"sqlite:///{target}", written)
    assert {t: len(f) for t, f in back.items()} == reflect(f"sqlite:///{CHINOOK_SQLITE}").row_counts
    assert_closed(written, back)
    bad = CliRunner().invoke(cli, ["clone", str(CHINOOK_SQLITE), str(tmp_path / "x.sqlite"),
                                   "--max-rows", "0"])
    assert bad.exit_code == 2 and "--max-rows" in bad.output
