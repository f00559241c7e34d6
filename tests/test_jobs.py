"""run_job and plan_job against real databases: every job-file key has an effect, and the
model cache refits exactly when it must."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE

from hma_db import ConfigError, ModelFileError, ReflectionError, SchemaDriftError, WriteError
from hma_db.jobs.file import load_job
from hma_db.jobs.plan import BY_TYPE, KEY, MODELED, PERSONAL, format_plan, plan_job
from hma_db.jobs.run import run_job
from hma_db.model.sample import target_rows
from hma_db.synthesizer.hma import load_synthesizer

# A small corner of Chinook keeps each fit around a second.
SMALL = 'include = ["Employee", "Customer", "Invoice"]\n'


def write_job(tmp_path: Path, body: str = "", *, source: str | None = None,
              target: str = "sqlite:///target.sqlite", name: str = "job.toml") -> Path:
    source = source or str(CHINOOK_SQLITE)
    path = tmp_path / name
    path.write_text(f'source = "{source}"\ntarget = "{target}"\n{body}')
    return path


def table_contents(url: str, schema: str | None = None) -> dict[str, list[tuple]]:
    """Every row of every table, sorted, for comparing two targets."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names(schema=schema)
            return {n: sorted(map(tuple, conn.execute(sa.select(sa.text("*")).select_from(
                sa.table(n, schema=schema))).fetchall()), key=repr) for n in names}
    finally:
        engine.dispose()


def row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


# ----------------------------------------------------------------------------- running
def test_same_seed_twice_gives_identical_targets_and_another_seed_differs(tmp_path):
    job = load_job(write_job(tmp_path, SMALL + 'seed = 11\nif_exists = "replace"\n'))
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    first = run_job(job)
    contents = table_contents(url)
    run_job(job)
    assert table_contents(url) == contents
    assert set(first.rows) == {"Employee", "Customer", "Invoice"}
    assert first.model == "fitted" and {"reflect", "read", "fit", "sample", "write"} <= set(
        first.seconds)
    job.seed = 12
    run_job(job)
    assert table_contents(url) != contents


def test_chunked_run_counts_rows_over_chunks_and_repeats_with_the_seed(tmp_path):
    # Invoice's 412 rows come in chunks of about 150: the progress events count over the whole
    # table, every key stays valid, and the same seed writes the same rows again.
    job = load_job(write_job(tmp_path, SMALL + 'seed = 5\nif_exists = "replace"\n'))
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    events: list = []
    first = run_job(job, chunk_rows=150, on_event=events.append)
    written = [e for e in events if e.kind == "rows_written" and e.table == "Invoice"]
    assert written[-1].done == written[-1].total == first.rows["Invoice"] == 412
    assert len({e.done for e in written if e.done < 412}) >= 2  # several chunks were written
    with sqlite3.connect(tmp_path / "target.sqlite") as conn:
        assert conn.execute('SELECT COUNT(DISTINCT "InvoiceId") FROM "Invoice"').fetchone()[0] == 412
        orphans = conn.execute('SELECT COUNT(*) FROM "Invoice" i LEFT JOIN "Customer" c '
                               'ON c."CustomerId" = i."CustomerId" WHERE c."CustomerId" IS NULL')
        assert orphans.fetchone()[0] == 0
    contents = table_contents(url)
    run_job(job, chunk_rows=150)
    assert table_contents(url) == contents


def test_model_cache_reuses_refits_on_change_and_on_age(tmp_path):
    body = SMALL + 'seed = 3\nif_exists = "replace"\n[model]\npath = "m/model.json"\nmax_age = "1h"\n'
    path = write_job(tmp_path, body)
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    events: list = []
    first = run_job(load_job(path), on_event=events.append)
    assert first.model == "fitted" and "no saved model" in first.model_reason
    assert [e.kind for e in events if e.kind.startswith("model")] == ["model_fitted", "model_saved"]
    stages = [e.stage for e in events if e.kind == "stage_finished"]
    assert stages == ["reflect", "load model", "read", "fit", "save model", "sample", "write"]
    written = {e.table: e.done for e in events if e.kind == "rows_written"}
    assert written == first.rows and "rows_written" not in {e.kind for e in first.events}
    fitted_contents = table_contents(url)
    events.clear()
    second = run_job(load_job(path), on_event=events.append)
    assert second.model == "reused" and "fit" not in second.seconds and "read" not in second.seconds
    assert [e.kind for e in events if e.kind.startswith("model")] == ["model_reused"]
    # The reuse skips the read, the fit and the save, and nothing else (the two runs' totals
    # were compared, but the job's fit now takes about 0.06 s, less than a write's spread).
    assert list(second.seconds) == [s for s in first.seconds
                                    if s not in ("read", "fit", "save model")]
    assert table_contents(url) == fitted_contents  # the cached model samples the same rows
    # A changed column setting changes what the model must be: refit.
    path.write_text(path.read_text() + '[columns."Invoice.BillingCountry"]\nsdtype = "categorical"\n'
                    '[columns."Customer.Company"]\ncategorical = true\n')
    third = run_job(load_job(path))
    assert third.model == "fitted" and "changed since the model was fitted" in third.model_reason
    assert run_job(load_job(path)).model == "reused"
    # Older than max_age: refit.
    path.write_text(path.read_text().replace('max_age = "1h"', 'max_age = "1s"'))
    time.sleep(1.2)
    aged = run_job(load_job(path))
    assert aged.model == "fitted" and "older than max_age 1s" in aged.model_reason


def test_without_a_seed_a_cached_model_still_samples_new_rows(tmp_path):
    path = write_job(tmp_path, SMALL + 'if_exists = "replace"\n[model]\npath = "model.json"\n')
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    run_job(load_job(path))
    first = table_contents(url)
    assert run_job(load_job(path)).model == "reused"
    assert table_contents(url)["Invoice"] != first["Invoice"]


def test_max_rows_fits_on_a_subset_and_samples_the_full_row_counts(tmp_path):
    result = run_job(load_job(write_job(tmp_path, SMALL + "seed = 2\nmax_rows = { Invoice = 100 }\n")))
    assert result.rows == {"Employee": 8, "Customer": 59, "Invoice": 412}
    with pytest.raises(ConfigError, match=r"job.toml, line 4: max_rows: unknown table\(s\) \['Nope'\]"):
        run_job(load_job(write_job(tmp_path, SMALL + "max_rows = { Nope = 5 }\n")))


def test_source_schema_change_refits_the_cached_model(tmp_path):
    source = tmp_path / "source.sqlite"
    source.write_bytes(CHINOOK_SQLITE.read_bytes())
    path = write_job(tmp_path, SMALL + '[model]\npath = "model.json"\n', source=str(source))
    assert run_job(load_job(path)).model == "fitted"
    with sqlite3.connect(source) as conn:
        conn.execute("ALTER TABLE Invoice ADD COLUMN Discount REAL")
    path.write_text(path.read_text().replace('target.sqlite"', 'target2.sqlite"'))
    result = run_job(load_job(path))
    assert result.model == "fitted" and "source schema" in result.model_reason
    with sqlite3.connect(tmp_path / "target2.sqlite") as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(Invoice)")]
    assert columns[-1] == "Discount"


def test_scale_and_if_exists_modes(tmp_path):
    path = write_job(tmp_path, SMALL + 'scale = 0.5\nseed = 1\nif_exists = "fail"\n'
                                '[model]\npath = "model.json"\n')
    result = run_job(load_job(path))
    sources = {"Employee": 8, "Customer": 59, "Invoice": 412}
    assert result.rows == {t: target_rows(n, 0.5) for t, n in sources.items()}
    with pytest.raises(WriteError, match="already exist"):
        run_job(load_job(path))
    path.write_text(path.read_text().replace('"fail"', '"append"'))
    run_job(load_job(path))
    assert row_counts(tmp_path / "target.sqlite") == {t: 2 * target_rows(n, 0.5)
                                                      for t, n in sources.items()}
    path.write_text(path.read_text().replace('"append"', '"truncate"'))
    run_job(load_job(path))
    assert row_counts(tmp_path / "target.sqlite") == {t: target_rows(n, 0.5)
                                                      for t, n in sources.items()}


def test_column_overrides_table_parameters_and_locales_reach_the_model(tmp_path):
    body = (SMALL + 'locales = ["fr_FR"]\nseed = 5\n[model]\npath = "model.json"\n'
            '[columns."Customer.Country"]\ncategorical = true\n'
            '[columns."Employee.Title"]\nprovider = "job"\n'
            '[columns."Invoice.BillingState"]\nsdtype = "unknown"\n'
            '[tables.Invoice]\ndefault_distribution = "truncnorm"\nenforce_rounding = false\n'
            'enforce_min_max_values = false\nnumerical_distributions = { Total = "norm" }\n'
            'locales = ["en_CA"]\n')
    run_job(load_job(write_job(tmp_path, body)))
    model = load_synthesizer(tmp_path / "model.json")
    columns = model.get_metadata().tables
    assert columns["Customer"]["columns"]["Country"]["sdtype"] == "categorical"
    assert not columns["Customer"]["columns"]["Country"].get("pii")
    title = columns["Employee"]["columns"]["Title"]
    assert (title["sdtype"], title["pii"], "generator" in title) == ("job", True, False)
    assert columns["Invoice"]["columns"]["BillingState"]["sdtype"] == "unknown"
    params = model.get_table_parameters("Invoice")["synthesizer_parameters"]
    assert params["default_distribution"] == "truncnorm" and params["enforce_rounding"] is False
    assert params["enforce_min_max_values"] is False and params["locales"] == ["en_CA"]
    assert params["numerical_distributions"] == {"Total": "norm"}
    assert model.get_learned_distributions("Invoice")["Total"]["distribution"] == "norm"
    assert model.locales == ["fr_FR"]
    real = {r[0] for r in sqlite3.connect(CHINOOK_SQLITE).execute("SELECT Country FROM Customer")}
    synthetic = {r[0] for r in sqlite3.connect(tmp_path / "target.sqlite").execute(
        "SELECT Country FROM Customer")}
    assert synthetic <= real | {None}  # kept as (real, frequent) categories, not Faker countries


def test_schema_include_exclude_and_job_names_checked_against_the_source(tmp_path):
    path = write_job(tmp_path, 'exclude = ["PlaylistTrack", "Playlist", "InvoiceLine", "Track", '
                               '"Album", "Artist", "Genre", "MediaType", "Employee"]\n'
                               'drop_cut_keys = true\n')  # Customer.SupportRepId -> Employee
    assert set(run_job(load_job(path)).rows) == {"Customer", "Invoice"}
    with pytest.raises(ConfigError, match=r"job.toml, line 3: include names table\(s\) 'Invoices'"):
        run_job(load_job(write_job(tmp_path, 'include = ["Invoices"]\n')))
    bad_table = write_job(tmp_path, SMALL + '\n[tables.Invoices]\ndefault_distribution = "norm"\n')
    with pytest.raises(ConfigError, match=r"line 5: \[tables.Invoices\] names no table of the "
                                          r"source; did you mean 'Invoice'\?"):
        run_job(load_job(bad_table))
    bad_column = write_job(tmp_path, SMALL + '[columns."Customer.Emial"]\nprovider = "email"\n')
    with pytest.raises(ConfigError, match=r"line 4: .*names no column of the source; did you "
                                          r"mean 'Customer.Email'\?"):
        plan_job(load_job(bad_column))
    key_column = write_job(tmp_path, SMALL + '[columns."Invoice.CustomerId"]\nsdtype = "numerical"\n')
    with pytest.raises(ConfigError, match="line 4: 'Invoice.CustomerId' is a key column"):
        plan_job(load_job(key_column))
    bad_distribution_column = write_job(
        tmp_path, SMALL + '[tables.Invoice]\nnumerical_distributions = { Totl = "beta" }\n')
    with pytest.raises(ConfigError, match=r"line 4: .*'Invoice.Totl'"):
        plan_job(load_job(bad_distribution_column))


def test_refusals_target_is_source_and_model_file_not_a_model(tmp_path):
    source = tmp_path / "source.sqlite"
    source.write_bytes(CHINOOK_SQLITE.read_bytes())
    with pytest.raises(WriteError, match="is the source database itself"):
        run_job(load_job(write_job(tmp_path, SMALL, source=str(source), target="source.sqlite")))
    (tmp_path / "notes.pkl").write_text("not a model")
    with pytest.raises(ModelFileError, match="is not an hma_db model"):
        run_job(load_job(write_job(tmp_path, SMALL + '[model]\npath = "notes.pkl"\n'
                                               'trust_pickle = true\n')))
    assert (tmp_path / "notes.pkl").read_text() == "not a model"  # never overwritten


def test_unreachable_target_fails_before_anything_is_fitted(tmp_path):
    path = write_job(tmp_path, SMALL, target="postgresql+psycopg://nobody:pw@127.0.0.1:9/db")
    events: list = []
    with pytest.raises(WriteError, match=r"Cannot connect to postgresql\+psycopg://nobody:\*\*\*@"):
        run_job(load_job(path), on_event=events.append)
    assert [e.stage for e in events if e.kind == "stage_finished"] == ["reflect"]
    with pytest.raises(WriteError, match="Cannot connect"):
        plan_job(load_job(path))


def test_report_is_saved_after_the_write(tmp_path):
    path = write_job(tmp_path, SMALL + 'seed = 8\nreport = "reports/quality.json"\n')
    events: list = []
    result = run_job(load_job(path), on_event=events.append)
    report = json.loads((tmp_path / "reports" / "quality.json").read_text())
    assert result.report_path == tmp_path / "reports" / "quality.json"
    assert result.report_score == pytest.approx(report["score"]) and 0 < report["score"] <= 1
    assert result.report_passed is report["passed"] and result.report_error is None
    assert report["validity"]["passed"] and "report" in result.seconds
    assert [e.kind for e in events][-1] == "report_saved"
    assert "report  saved to" in format_plan(plan_job(load_job(path)))


def test_a_failed_report_does_not_fail_the_written_job(tmp_path):
    (tmp_path / "reports").write_text("a file where the report folder should be")
    path = write_job(tmp_path, SMALL + 'report = "reports/quality.html"\n')
    result = run_job(load_job(path))
    assert result.rows["Invoice"] == 412 and result.report_path is None
    assert result.report_error and result.events[-1].kind == "report_failed"


# ----------------------------------------------------------------------------- planning
def test_plan_describes_the_run_and_writes_nothing(tmp_path):
    body = (SMALL + 'scale = 2\nseed = 4\n[model]\npath = "model.json"\n'
            '[columns."Customer.Company"]\nprovider = "company"\n'
            '[tables.Invoice]\nnumerical_distributions = { Total = "gamma" }\n')
    plan = plan_job(load_job(write_job(tmp_path, body)))
    assert not (tmp_path / "target.sqlite").exists() and not (tmp_path / "model.json").exists()
    assert [t.name for t in plan.tables] == ["Employee", "Customer", "Invoice"]
    assert {t.name: t.rows for t in plan.tables} == {"Employee": 16, "Customer": 118, "Invoice": 824}
    assert all(t.target == "new: created" for t in plan.tables) and plan.ok
    how = {(t.name, c.name): (c.how, c.detail) for t in plan.tables for c in t.columns}
    assert how[("Invoice", "InvoiceId")] == (KEY, "primary key")
    assert how[("Invoice", "CustomerId")] == (KEY, "references Customer")
    assert how[("Customer", "Company")] == (PERSONAL, "Faker company")
    assert how[("Invoice", "Total")] == (MODELED, "numerical, gamma")
    assert how[("Employee", "Title")][0] == BY_TYPE
    assert plan.model.startswith("fit: no saved model")
    text = format_plan(plan)
    assert "Tables in write order (3 tables, 958 rows)" in text
    assert "No problems found" in text and "Faker company" in text


def test_plan_refuses_what_the_run_refuses_with_the_same_line(tmp_path):
    # max_rows naming a table the source lacks: run refused it, plan found no problem. Both
    # now build the job's synthesizer through jobs.setup.job_synthesizer.
    path = write_job(tmp_path, SMALL + "max_rows = { Nope = 5 }\n")
    messages = []
    for call in (plan_job, run_job):
        with pytest.raises(ConfigError, match=r"job.toml, line 4: max_rows: unknown table") as raised:
            call(load_job(path))
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert not (tmp_path / "target.sqlite").exists()


def test_plan_reports_existing_tables_and_drift(tmp_path):
    path = write_job(tmp_path, SMALL + 'seed = 2\nif_exists = "fail"\n[model]\npath = "model.json"\n')
    run_job(load_job(path))
    plan = plan_job(load_job(path))
    assert not plan.ok and "already exist in the target" in plan.problems[0]
    assert all(t.target.startswith("exists: the job fails") for t in plan.tables)
    with sqlite3.connect(tmp_path / "target.sqlite") as conn:
        conn.execute("ALTER TABLE Invoice ADD COLUMN Extra TEXT")
    path.write_text(path.read_text().replace('"fail"', '"truncate"'))
    plan = plan_job(load_job(path))
    assert any("Extra" in d for d in plan.drift) and "differ from the source schema" in " ".join(
        plan.problems)
    assert "Schema drift" in format_plan(plan)
    with pytest.raises(SchemaDriftError):
        run_job(load_job(path))


# ----------------------------------------------------------------------------- PostgreSQL
@pytest.mark.postgres
def test_postgres_schema_mapping_and_reproducible_reseed(chinook_postgres, postgres_databases,
                                                        tmp_path):
    # The server trusts loopback connections, so a password in the URL is accepted and ignored:
    # it is there to check that no output shows it.
    target = sa.make_url(postgres_databases.new("job_target")).set(password="s3cret-pw")
    target = target.render_as_string(hide_password=False)
    body = ('include = ["employee", "customer", "invoice"]\nseed = 9\nif_exists = "replace"\n'
            '[schema]\nsource = "public"\ntarget = "staging"\n'
            '[columns."customer.country"]\ncategorical = true\n'
            '[model]\npath = "pg-model.json"\n')
    os.environ["HMA_DB_JOB_TEST_SOURCE"] = chinook_postgres
    try:
        path = write_job(tmp_path, body, source="${HMA_DB_JOB_TEST_SOURCE}", target=target)
        job = load_job(path)
    finally:
        del os.environ["HMA_DB_JOB_TEST_SOURCE"]
    plan = plan_job(job)
    assert [t.name for t in plan.tables] == ["employee", "customer", "invoice"] and plan.ok
    first = run_job(job)
    assert first.rows == {"employee": 8, "customer": 59, "invoice": 412}
    contents = table_contents(target, schema="staging")
    assert set(contents) == {"employee", "customer", "invoice"}
    second = run_job(job)
    assert second.model == "reused" and table_contents(target, schema="staging") == contents
    assert "s3cret-pw" not in format_plan(plan) and plan.target.count("***") == 1
    assert "s3cret-pw" not in repr(job)


@pytest.mark.postgres
def test_postgres_remaining_keys_exclude_scale_overrides_parameters_and_if_exists(
        chinook_postgres, postgres_databases, tmp_path):
    target = postgres_databases.new("job_keys")
    body = ('exclude = ["playlist_track", "playlist", "invoice_line", "track", "album", "artist", '
            '"genre", "media_type"]\nscale = 0.5\nseed = 4\nlocales = ["fr_FR"]\n'
            'if_exists = "fail"\n'
            '[columns."invoice.billing_state"]\nsdtype = "categorical"\n'
            '[columns."customer.company"]\nprovider = "company"\n'
            '[tables.invoice]\nnumerical_distributions = { total = "norm" }\n'
            'enforce_min_max_values = true\nenforce_rounding = true\n'
            '[model]\npath = "model.json"\nmax_age = "1h"\n')
    path = write_job(tmp_path, body, source=chinook_postgres, target=target)
    expected = {"employee": target_rows(8, 0.5), "customer": target_rows(59, 0.5),
                "invoice": target_rows(412, 0.5)}
    assert run_job(load_job(path)).rows == expected
    model = load_synthesizer(tmp_path / "model.json")
    assert model.locales == ["fr_FR"]
    assert model.get_metadata().tables["invoice"]["columns"]["billing_state"]["sdtype"] == \
        "categorical"
    params = model.get_table_parameters("invoice")["synthesizer_parameters"]
    assert params["numerical_distributions"] == {"total": "norm"}

    def counts() -> dict[str, int]:
        return {t: len(rows) for t, rows in table_contents(target).items()}

    path.write_text(path.read_text().replace('"fail"', '"append"'))
    assert run_job(load_job(path)).model == "reused"
    assert counts() == {t: 2 * n for t, n in expected.items()}
    path.write_text(path.read_text().replace('"append"', '"truncate"'))
    run_job(load_job(path))
    assert counts() == expected
    totals = [float(r[-1]) for r in table_contents(target)["invoice"]]
    assert min(totals) >= 0.99 and max(totals) <= 25.86  # enforce_min_max_values: Chinook's range


def test_plan_roles_for_unique_and_generated_columns(tmp_path):
    source = tmp_path / "shop.sqlite"
    with sqlite3.connect(source) as conn:
        conn.executescript(
            "CREATE TABLE team (id INTEGER PRIMARY KEY, code VARCHAR(8) NOT NULL UNIQUE,"
            " score REAL, notes TEXT);"
            "CREATE TABLE player (id INTEGER PRIMARY KEY, team_id INTEGER REFERENCES team(id),"
            " email VARCHAR(80));")
        conn.executemany("INSERT INTO team VALUES (?, ?, ?, ?)",
                         [(i, f"T{i:04d}", i * 1.5, f"note {i} " * 5) for i in range(1, 40)])
        conn.executemany("INSERT INTO player VALUES (?, ?, ?)",
                         [(i, i % 39 + 1, f"p{i}@example.com") for i in range(1, 100)])
    plan = plan_job(load_job(write_job(tmp_path, "", source=str(source))))
    how = {(t.name, c.name): (c.how, c.detail) for t in plan.tables for c in t.columns}
    assert [t.name for t in plan.tables] == ["team", "player"]
    assert how[("team", "code")][0] == KEY and how[("team", "code")][1].startswith("unique")
    assert how[("team", "score")] == (MODELED, "numerical, beta")
    assert how[("player", "team_id")] == (KEY, "references team")
    assert how[("player", "email")] == (PERSONAL, "Faker email")
    assert how[("team", "notes")][0] == BY_TYPE


@pytest.mark.mysql
def test_mariadb_target_reseeds_reproducibly(mysql_databases, tmp_path):
    target = mysql_databases.new("job_target")
    path = write_job(tmp_path, SMALL + 'seed = 6\nif_exists = "replace"\n', target=target)
    first = run_job(load_job(path))
    assert first.rows == {"Employee": 8, "Customer": 59, "Invoice": 412}
    contents = table_contents(target)
    assert plan_job(load_job(path)).ok  # replace: existing tables are no problem
    run_job(load_job(path))
    assert table_contents(target) == contents


# ----------------------------------------------------------------------------- audit additions
def test_sqlite_source_schema_and_a_max_rows_number_reach_the_run(tmp_path):
    # schema.source: SQLite's one schema is "main"; any other is refused with the source's list.
    body = SMALL + 'seed = 2\nmax_rows = 60\n[schema]\nsource = "main"\n[model]\npath = "sub.json"\n'
    result = run_job(load_job(write_job(tmp_path, body, name="subset.toml")))
    assert result.rows == {"Employee": 8, "Customer": 59, "Invoice": 412}  # full row counts
    assert sum(result.rows_read.values()) < 8 + 59 + 412  # fitted on a subset of the rows
    with pytest.raises(ReflectionError, match="Schema 'other' does not exist .* its schemas are: "
                                              "main"):
        run_job(load_job(write_job(tmp_path, SMALL + '[schema]\nsource = "other"\n',
                                   name="other.toml")))
    # max_rows = 60: the model learned Invoice from a subset, so it differs from a full fit.
    full = SMALL + 'seed = 2\n[model]\npath = "full.json"\n'
    run_job(load_job(write_job(tmp_path, full, target="sqlite:///full.sqlite", name="full.toml")))
    subset = load_synthesizer(tmp_path / "sub.json").get_learned_distributions("Invoice")["Total"]
    whole = load_synthesizer(tmp_path / "full.json").get_learned_distributions("Invoice")["Total"]
    assert subset != whole


def test_a_target_schema_with_a_sqlite_target_is_refused_before_anything_is_read(tmp_path):
    # SQLite has no schemas: this failed in the writer, after the read and the fit, and plan
    # found no problem with it.
    path = write_job(tmp_path, SMALL + '[schema]\ntarget = "staging"\n[model]\npath = "m.json"\n')
    for call in (plan_job, run_job):
        events: list = []
        with pytest.raises(ConfigError, match=r"job.toml, line 5: 'schema.target' cannot be used "
                                              r"with a SQLite target"):
            call(load_job(path), **({"on_event": events.append} if call is run_job else {}))
        assert events == []
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "target.sqlite").exists()


@pytest.mark.postgres
def test_postgres_max_rows_table_parameters_provider_report_fail_and_model_age(
        chinook_postgres, postgres_databases, tmp_path):
    target = postgres_databases.new("job_more_keys")
    body = ('include = ["employee", "customer", "invoice"]\nseed = 3\nmax_rows = 60\n'
            'if_exists = "fail"\nreport = "out/quality.json"\n'
            '[columns."customer.company"]\nprovider = "company"\n'
            '[tables.invoice]\ndefault_distribution = "truncnorm"\nenforce_rounding = true\n'
            'locales = ["fr_FR"]\n'
            '[model]\npath = "model.json"\nmax_age = "1s"\n')
    path = write_job(tmp_path, body, source=chinook_postgres, target=target)
    first = run_job(load_job(path))
    assert first.rows == {"employee": 8, "customer": 59, "invoice": 412}  # max_rows: fit only
    assert first.model == "fitted" and first.report_error is None
    report = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert report["validity"]["passed"] and first.report_path == tmp_path / "out" / "quality.json"
    model = load_synthesizer(tmp_path / "model.json")
    company = model.get_metadata().tables["customer"]["columns"]["company"]
    assert (company["sdtype"], company["pii"]) == ("company", True)
    params = model.get_table_parameters("invoice")["synthesizer_parameters"]
    assert params["default_distribution"] == "truncnorm" and params["enforce_rounding"] is True
    assert params["locales"] == ["fr_FR"]
    assert model.get_learned_distributions("invoice")["total"]["distribution"] == "truncnorm"
    contents = table_contents(target)

    def companies(url: str) -> set:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            found = set(conn.exec_driver_sql("SELECT company FROM customer").scalars())
        engine.dispose()
        return found - {None}

    real_companies, synthetic = companies(chinook_postgres), companies(target)
    assert synthetic and not synthetic & real_companies  # generated, never copied
    # if_exists = "fail" with the tables there: refused, the target as it was.
    with pytest.raises(WriteError, match="already exist"):
        run_job(load_job(path))
    assert table_contents(target) == contents
    # max_rows: a full fit learns another invoice total than the fit on the subset.
    full_path = write_job(tmp_path, body.replace("max_rows = 60\n", "").replace(
        '"fail"', '"replace"').replace("model.json", "full.json").replace("out/quality.json",
                                                                       "out/full.json"),
        source=chinook_postgres, target=target, name="full.toml")
    run_job(load_job(full_path))
    assert load_synthesizer(tmp_path / "full.json").get_learned_distributions("invoice")[
        "total"] != model.get_learned_distributions("invoice")["total"]
    # model.max_age: a model older than it is fitted again.
    time.sleep(1.2)
    path.write_text(path.read_text().replace('"fail"', '"replace"'))
    aged = run_job(load_job(path))
    assert aged.model == "fitted" and "older than max_age 1s" in aged.model_reason
