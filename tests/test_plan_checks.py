"""A plan that passes is a run that passes (issue 13, point 6).

Northwind's ``us_states.state_abbr varchar(2)`` made UNIQUE: ``plan`` said "No problems found"
and the run failed after the fit ("no value Faker made leaves room in max_length 2 ... widen the
column"), although 676 two-letter codes exist for its 51 rows. Generated unique values now fit
any width that has room, and what has no room is refused by one check
(:func:`hma_db.synthesizer.check_before_work`) that ``plan`` lists and ``run`` / ``clone`` raise
before reading a row.
"""

from __future__ import annotations

import sqlite3
import string
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import NORTHWIND_POSTGRES_SQL, NORTHWIND_SQLITE, run_postgres_script

from hma_db import SamplingError, clone
from hma_db.jobs.file import load_job
from hma_db.jobs.plan import format_plan, plan_job
from hma_db.jobs.run import run_job

# Every abbreviation en_US Faker's state_abbr gives (states, DC, territories, freely
# associated states): 51 rows take real ones, more rows take codes of the same shape.
_REAL_ABBREVIATIONS = 59


def _northwind_unique_abbr(tmp_path: Path) -> Path:
    """Northwind with ``us_states.state_abbr`` UNIQUE, as in the issue."""
    path = tmp_path / "northwind.sqlite"
    path.write_bytes(NORTHWIND_SQLITE.read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE UNIQUE INDEX us_states_abbr ON us_states (state_abbr)")
    return path


def _job(tmp_path: Path, source: str, body: str = "", target: str | None = None) -> Path:
    target = target or f"sqlite:///{tmp_path / 'target.sqlite'}"
    path = tmp_path / "job.toml"
    # The state lists are lookup tables, copied by default: these tests generate them.
    path.write_text(f'source = "{source}"\ntarget = "{target}"\nif_exists = "replace"\n'
                    f'seed = 5\nreference_tables = false\n{body}')
    return path


def _abbreviations(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT state_abbr FROM us_states"))]
    finally:
        engine.dispose()


def _places(tmp_path: Path, width: int = 1, rows: int = 26) -> Path:
    """A table whose unique personal-data column (a state abbreviation) is ``width`` wide."""
    path = tmp_path / "places.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE places (id INTEGER PRIMARY KEY, state_abbr VARCHAR({width}) "
                     "UNIQUE, name VARCHAR(30))")
        conn.executemany("INSERT INTO places VALUES (?, ?, ?)",
                         [(i, string.ascii_uppercase[i % 26] * width, f"place {i}")
                          for i in range(rows)])
    return path


# ------------------------------------------------------------------ room where there is room
def test_northwind_unique_state_abbr_of_width_2_plans_and_runs(tmp_path):
    source = _northwind_unique_abbr(tmp_path)
    path = _job(tmp_path, f"sqlite:///{source}")
    plan = plan_job(load_job(path))
    assert plan.ok, plan.problems
    result = run_job(load_job(path))  # failed: "no value Faker made leaves room in max_length 2"
    assert result.rows["us_states"] == 51
    abbreviations = _abbreviations(f"sqlite:///{tmp_path / 'target.sqlite'}")
    assert len(set(abbreviations)) == 51 and {len(a) for a in abbreviations} == {2}
    assert all(a.isalpha() and a.isupper() for a in abbreviations)  # Faker's own: AL, CA...


def test_more_rows_than_faker_has_abbreviations_take_codes_unique_across_chunks(tmp_path):
    source = _northwind_unique_abbr(tmp_path)
    path = _job(tmp_path, f"sqlite:///{source}", 'include = ["us_states"]\nscale = 8\n')
    assert plan_job(load_job(path)).ok
    result = run_job(load_job(path), chunk_rows=50)  # 408 rows in 9 chunks
    assert result.rows["us_states"] == 408 > _REAL_ABBREVIATIONS
    abbreviations = _abbreviations(f"sqlite:///{tmp_path / 'target.sqlite'}")
    assert len(set(abbreviations)) == 408
    assert all(len(a) == 2 and a.isalpha() and a.isupper() for a in abbreviations)  # [A-Z]{2}


def test_a_width_1_column_takes_letters_and_digits_when_letters_are_too_few(tmp_path):
    source = _places(tmp_path, width=1, rows=26)
    target = tmp_path / "out.sqlite"
    result = clone(f"sqlite:///{source}", f"sqlite:///{target}", scale=1.3, seed=2,
                   reference_tables=False)
    assert result.rows["places"] == 34  # 26 letters are not enough: upper-case and digits
    with sqlite3.connect(target) as conn:
        values = [r[0] for r in conn.execute("SELECT state_abbr FROM places")]
    assert len(set(values)) == 34 and all(len(v) == 1 and v in string.ascii_uppercase
                                          + string.digits for v in values)


@pytest.mark.postgres
def test_postgres_northwind_unique_state_abbr_plans_and_runs(postgres_databases, tmp_path):
    url = postgres_databases.new("nw_unique_abbr")
    run_postgres_script(url, NORTHWIND_POSTGRES_SQL)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE us_states ADD CONSTRAINT us_states_abbr_key "
                             "UNIQUE (state_abbr)"))
    engine.dispose()
    target = postgres_databases.new("nw_unique_abbr_target")
    path = _job(tmp_path, url, 'include = ["us_states"]\nscale = 3\n', target=target)
    assert plan_job(load_job(path)).ok
    result = run_job(load_job(path), chunk_rows=60)  # the target enforces the UNIQUE
    assert result.rows["us_states"] == 153
    abbreviations = _abbreviations(target)
    assert len(set(abbreviations)) == 153 and {len(a) for a in abbreviations} == {2}


@pytest.mark.mysql
def test_mariadb_target_takes_the_codes_under_its_case_insensitive_unique(mysql_databases,
                                                                          tmp_path):
    # MariaDB's default collation compares 'ab' and 'AB' as equal: codes use one case only.
    source = _northwind_unique_abbr(tmp_path)
    target = mysql_databases.new("nw_unique_abbr")
    path = _job(tmp_path, f"sqlite:///{source}", 'include = ["us_states"]\nscale = 6\n',
                target=target)
    assert plan_job(load_job(path)).ok
    assert run_job(load_job(path), chunk_rows=100).rows["us_states"] == 306
    abbreviations = _abbreviations(target)
    assert len({a.upper() for a in abbreviations}) == 306


# ---------------------------------------------------------------- refusals before the work
def _stages(events: list) -> list[str]:
    return [e.stage for e in events if e.kind == "stage_started"]


def test_no_room_at_all_is_refused_by_plan_and_by_run_before_reading(tmp_path):
    # 260 unique values in a varchar(1): 36 letters and digits exist. The run failed after the
    # read and the fit; plan found nothing.
    source = _places(tmp_path, width=1, rows=26)
    path = _job(tmp_path, f"sqlite:///{source}", 'scale = 10\n[model]\npath = "m.json"\n')
    plan = plan_job(load_job(path))
    line = ("Column 'places.state_abbr': 260 unique values are needed, but only 36 distinct "
            "values fit max_length 1 (codes of upper-case letters and digits); lower the scale "
            "so that the table gets at most 36 rows, or widen the column.")
    assert plan.problems == [line]
    assert f"Problems (the run would fail):\n  - {line}" in format_plan(plan)
    events: list = []
    with pytest.raises(SamplingError) as raised:
        run_job(load_job(path), on_event=events.append)
    assert str(raised.value) == line  # the same check, the same line
    assert _stages(events) == ["reflect"]  # nothing read, fitted or written
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "target.sqlite").exists()


def test_a_key_pattern_without_room_is_refused_by_plan_and_by_clone_before_reading(tmp_path):
    # A string key whose learned regex_format ('[A-Z]\d', 260 values) is too narrow for the
    # rows at scale 20: the run failed in sampling, after the fit.
    source = tmp_path / "codes.sqlite"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE codes (code VARCHAR(2) PRIMARY KEY, amount REAL)")
        conn.executemany("INSERT INTO codes VALUES (?, ?)",
                         [(f"{string.ascii_uppercase[i]}{i % 10}", i * 1.5) for i in range(26)])
    path = _job(tmp_path, f"sqlite:///{source}", "scale = 20\n")
    plan = plan_job(load_job(path))
    assert plan.problems == ["Key (codes.code): regex_format '[A-Z]\\d' allows only 260 "
                             "distinct values and 520 rows need one each; set a wider "
                             "regex_format or lower the scale."]
    stages: list = []
    with pytest.raises(SamplingError, match=r"^Key \(codes\.code\): regex_format"):
        clone(f"sqlite:///{source}", f"sqlite:///{tmp_path / 'out.sqlite'}", scale=20,
              on_stage=lambda name, seconds: stages.append(name))
    assert stages == ["reflect", "reflect"] and not (tmp_path / "out.sqlite").exists()
    assert plan_job(load_job(_job(tmp_path, f"sqlite:///{source}", "scale = 5\n"))).ok


def test_codes_of_several_locales_never_repeat_across_chunks():
    # en_US and fr_FR rows of a varchar(2) unique column, sampled in two chunks of one run.
    import numpy as np

    from hma_db.transform.personal import generate

    spec = {"provider": "state_abbr", "unique": True, "max_length": 2}
    rng = np.random.default_rng(0)
    values = []
    for start in (0, 150):
        locale_of_row = rng.integers(2, size=150)
        values += list(generate(spec, locale_of_row, rng, ("en_US", "fr_FR"), "'t.abbr'",
                                index=np.arange(start, start + 150), seed=42, total=300))
    assert len(set(values)) == 300 and all(len(v) == 2 and v.isupper() for v in values)
    again = generate(spec, np.zeros(150, dtype=int), rng, ("en_US", "fr_FR"), "'t.abbr'",
                     index=np.arange(150, 300), seed=42, total=300)
    assert list(again) == values[150:]  # a value depends on its position, not on its locale


def test_a_table_named_like_the_staging_tables_is_refused_by_plan_and_by_clone(tmp_path):
    """The next run into the target, or 'hma-db clean', drops the tables of a staging run
    that is gone, found by their name: a source table of that name would be cloned and then
    dropped from the target. Refused before anything is read, naming the table and the fix;
    a name that only looks close is cloned."""
    source = tmp_path / "staged.sqlite"
    with sqlite3.connect(source) as conn:
        for name in ("_hma_stage_0123456789ab_live", "_hma_stage_cafe_live"):
            conn.execute(f'CREATE TABLE "{name}" (id INTEGER PRIMARY KEY, weight REAL)')
            conn.executemany(f'INSERT INTO "{name}" VALUES (?, ?)',
                             [(i, i * 0.5) for i in range(20)])
    line = ("Table '_hma_stage_0123456789ab_live' is named like hma_db's staging tables, which "
            "the next run into the target or 'hma-db clean' would drop: leave it out of the run "
            "(exclude) or rename it in the source")
    path = _job(tmp_path, f"sqlite:///{source}")
    assert plan_job(load_job(path)).problems == [line]
    stages: list = []
    with pytest.raises(SamplingError) as raised:
        clone(f"sqlite:///{source}", f"sqlite:///{tmp_path / 'out.sqlite'}",
              on_stage=lambda name, seconds: stages.append(name))
    assert str(raised.value) == line
    assert "read" not in stages and not (tmp_path / "out.sqlite").exists()
    clone(f"sqlite:///{source}", f"sqlite:///{tmp_path / 'out.sqlite'}",
          exclude=["_hma_stage_0123456789ab_live"])
    with sqlite3.connect(tmp_path / "out.sqlite") as conn:
        assert conn.execute('SELECT COUNT(*) FROM "_hma_stage_cafe_live"').fetchone()[0] == 20
