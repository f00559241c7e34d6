"""Masking policies through clone, the command line and a job file (issue 16), on Northwind into
SQLite and PostgreSQL: every column policy, table keep and empty, where, the reference tables
kept by default, and ``--policy orders.ship_name=fake`` leaving no real company name.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import NORTHWIND_SQLITE

from hma_db.cli.main import cli
from hma_db.jobs import load_job, run_job
from hma_db.pipeline import clone
from hma_db.transform.masking import hash_values

SOURCE = f"sqlite:///{NORTHWIND_SQLITE}"
POLICIES = {"customers.company_name": "fake:company", "customers.contact_name": "hash",
            "customers.phone": "mask:last=4", "customers.fax": "null",
            "customers.country": "keep", "orders.ship_region": "constant:n/a",
            "shippers": "keep", "customer_demographics": "empty",
            "customer_customer_demo": "empty"}
WHERE = {"orders": "order_date >= '1997-01-01'"}


def _target(kind: str, request, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'target.sqlite'}"
    return request.getfixturevalue("postgres_databases").new("policies")


def _read(url: str, table: str) -> pd.DataFrame:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return pd.read_sql_table(table, engine)
    finally:
        engine.dispose()


def _check(target: str) -> None:
    real = {t: _read(SOURCE, t) for t in ("customers", "orders", "shippers", "region",
                                          "us_states", "categories", "territories")}
    customers, orders = _read(target, "customers"), _read(target, "orders")
    assert not customers["company_name"].isin(real["customers"]["company_name"]).any()
    hashed = set(hash_values(real["customers"]["contact_name"], "str", "x"))
    assert set(customers["contact_name"]) <= hashed
    assert not customers["contact_name"].isin(real["customers"]["contact_name"]).any()
    phones = customers["phone"].dropna()
    assert phones.str[-4:].isin(real["customers"]["phone"].str[-4:]).all()
    assert phones.str[:-4].str.fullmatch(r"[^0-8a-wyzA-WYZ]*").all()  # x, X and 9 only
    assert customers["fax"].isna().all()
    assert set(customers["country"]) <= set(real["customers"]["country"])
    assert (orders["ship_region"] == "n/a").all()
    assert pd.to_datetime(orders["order_date"]).min() >= pd.Timestamp("1997-01-01")
    for table in ("shippers", "region", "us_states", "territories"):  # kept, by policy or default
        copied = _read(target, table)
        pd.testing.assert_frame_equal(copied, real[table], check_dtype=False)
    assert len(_read(target, "customer_demographics")) == 0


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_every_policy_through_clone(kind, request, tmp_path, monkeypatch):
    monkeypatch.setenv("HMA_DB_HASH_KEY", "test key")
    target = _target(kind, request, tmp_path)
    clone(SOURCE, target, seed=4, policies=POLICIES, where=WHERE)
    _check(target)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_every_policy_through_the_command_line(kind, request, tmp_path, monkeypatch):
    monkeypatch.setenv("HMA_DB_HASH_KEY", "test key")
    target = _target(kind, request, tmp_path)
    args = ["clone", str(NORTHWIND_SQLITE), target, "--seed", "4"]
    for key, policy in POLICIES.items():
        args += ["--policy", f"{key}={policy}"]
    args += ["--where", "orders: order_date >= '1997-01-01'"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    _check(target)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_every_policy_through_a_job_file(kind, request, tmp_path, monkeypatch):
    monkeypatch.setenv("HMA_DB_HASH_KEY", "test key")
    target = _target(kind, request, tmp_path)
    lines = [f'source = "{NORTHWIND_SQLITE}"', f'target = "{target}"', "seed = 4"]
    for key, policy in POLICIES.items():
        section = "tables" if "." not in key else "columns"
        name = key if section == "tables" else f'"{key}"'
        lines += [f"[{section}.{name}]", f'policy = "{policy}"']
    lines += ["[tables.orders]", "where = \"order_date >= '1997-01-01'\""]
    (tmp_path / "job.toml").write_text("\n".join(lines) + "\n")
    run_job(load_job(tmp_path / "job.toml"))
    _check(target)


@pytest.mark.parametrize("policy", ["fake", "fake:company"])
def test_fake_policy_leaves_no_real_company_name_in_ship_name(policy, tmp_path):
    """orders.ship_name holds the customers' company names but is not named like personal data:
    one option fakes it, in the issue's own words (``fake``, no provider named) or with one."""
    target = tmp_path / "out.sqlite"
    result = CliRunner().invoke(cli, ["clone", str(NORTHWIND_SQLITE), str(target), "--seed", "2",
                                      "--policy", f"orders.ship_name={policy}"])
    assert result.exit_code == 0, result.stderr
    real = _read(SOURCE, "customers")["company_name"]
    ship = _read(f"sqlite:///{target}", "orders")["ship_name"]
    assert ship.notna().all() and not ship.isin(real).any() and ship.nunique() > 50


def test_bad_policies_are_refused_before_any_work_in_one_line(tmp_path):
    for policy, fragment in (("orders.ship_nmae=keep", "'orders.ship_nmae' names no table"),
                             ("orders.ship_name=shred", "unknown policy 'shred'"),
                             ("orders.order_id=keep", "a key column has no policy")):
        target = tmp_path / "never.sqlite"
        result = CliRunner().invoke(cli, ["clone", str(NORTHWIND_SQLITE), str(target),
                                          "--policy", policy])
        assert result.exit_code == 2, (policy, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and fragment in lines[0], result.stderr
        assert not target.exists()
