"""Sums found in the data hold in every synthetic row: a parent column that is the sum of its
children's products (an invoice's total), and a column that is the product or sum of two
others of its row (a line's total, a gross amount); whole, in chunks, at scale 1 and 3, after
a model file round trip."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hma_db import HMASynthesizer, Metadata, evaluate, load_synthesizer, read_tables, reflect
from hma_db.cli.main import cli
from hma_db.errors import ConfigError
from hma_db.jobs.file import load_job
from hma_db.jobs.plan import format_plan, plan_job
from hma_db.jobs.run import run_job


def shop(seed: int = 0) -> tuple[Metadata, dict[str, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    n = 150
    lines_per = rng.integers(1, 8, n)
    invoice_of = np.repeat(np.arange(1, n + 1), lines_per)
    price = rng.choice([0.99, 1.99, 4.5, 12.25], len(invoice_of))
    quantity = rng.integers(1, 6, len(invoice_of))
    line_total = np.round(price * quantity, 2)
    totals = pd.Series(line_total).groupby(invoice_of).sum().round(2).to_numpy()
    net = np.round(rng.gamma(2, 30, n), 2)
    invoice = pd.DataFrame({
        "invoice_id": np.arange(1, n + 1),
        "total": [decimal.Decimal(f"{t:.2f}") for t in totals],  # as SQLite's NUMERIC reads
        "net": net, "tax": np.round(net * 0.2, 2), "gross": np.round(net + np.round(net * 0.2, 2), 2)})
    lines = pd.DataFrame({"line_id": np.arange(1, len(invoice_of) + 1), "invoice_id": invoice_of,
                          "unit_price": price, "quantity": quantity, "line_total": line_total})
    number = {"sdtype": "numerical"}
    metadata = Metadata.from_dict({"tables": {
        "invoice": {"primary_key": "invoice_id", "columns": {
            "invoice_id": {"sdtype": "id"}, "total": number, "net": number, "tax": number,
            "gross": number}},
        "lines": {"primary_key": "line_id", "columns": {
            "line_id": {"sdtype": "id"}, "invoice_id": {"sdtype": "id"}, "unit_price": number,
            "quantity": number, "line_total": number}}},
        "relationships": [{"parent_table_name": "invoice", "parent_primary_key": "invoice_id",
                           "child_table_name": "lines", "child_foreign_key": "invoice_id"}]})
    return metadata, {"invoice": invoice, "lines": lines}


@pytest.fixture(scope="module")
def fitted():
    metadata, data = shop()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit(data)
    return synthesizer, data


def test_sums_are_found(fitted):
    synthesizer, data = fitted
    found = {c.describe() for c in synthesizer.get_constraints() if c.found}
    assert {"invoice.total = sum(lines.unit_price * lines.quantity)",
            "line_total = unit_price * quantity", "gross = net + tax"} <= found
    synthesizer.validate_constraints(data)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_sums_hold_whole_and_in_chunks(fitted, scale, tmp_path):
    synthesizer, data = fitted
    path = tmp_path / "model.pkl"
    synthesizer.save(path)
    for model in (synthesizer, load_synthesizer(path)):
        out = model.sample(scale=scale)
        model.validate_constraints(out)
        assert isinstance(out["invoice"]["total"].dropna().iloc[0], decimal.Decimal)
        chunks = list(model.sample_chunks(scale=scale, chunk_rows=200))
        assert len(chunks) > 2
        model.validate_constraints({t: pd.concat([c[t] for c in chunks], ignore_index=True)
                                    for t in chunks[0]})
    # the totals follow the sampled lines, not a copy of the real totals
    assert out["invoice"]["total"].nunique() > len(out["invoice"]) // 4


def test_without_found_rules_the_sums_break():
    metadata, data = shop()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2, find_rules=False)
    synthesizer.fit(data)
    out = synthesizer.sample()
    lines = out["lines"]
    assert (np.abs(lines["line_total"] - lines["unit_price"] * lines["quantity"]) > 0.01).mean() > 0.5


def test_found_rules_are_switched_off_one_by_one_and_stored_with_the_model(tmp_path):
    metadata, data = shop()
    off = ["lines: line_total = unit_price * quantity"]
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2, skip_rules=off)
    synthesizer.fit(data)
    found = {f"{c.table_name}: {c.describe()}" for c in synthesizer.get_constraints() if c.found}
    assert "invoice: invoice.total = sum(lines.unit_price * lines.quantity)" in found
    assert off[0] not in found and "invoice: gross = net + tax" in found
    path = tmp_path / "model.json"
    synthesizer.save(path)
    loaded = load_synthesizer(path)
    assert loaded.skip_rules == frozenset(off)
    lines = loaded.sample()["lines"]
    assert (np.abs(lines["line_total"] - lines["unit_price"] * lines["quantity"]) > 0.01).any()
    with pytest.warns(UserWarning, match="skip_rules names no rule found in this data: "
                                         "lines: no such rule; found: .*invoice: gross"):
        HMASynthesizer(metadata, verbose=False, seed=2, skip_rules=["lines: no such rule"]).fit(data)


def _shop_file(tmp_path) -> str:
    _, data = shop()
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE invoice (invoice_id INTEGER PRIMARY KEY, "
                             "total NUMERIC(10, 2), net REAL, tax REAL, gross REAL)")
        conn.exec_driver_sql("CREATE TABLE lines (line_id INTEGER PRIMARY KEY, invoice_id INTEGER "
                             "REFERENCES invoice (invoice_id), unit_price REAL, quantity INTEGER, "
                             "line_total REAL)")
        invoice = data["invoice"].assign(total=data["invoice"]["total"].astype(float))
        invoice.to_sql("invoice", conn, if_exists="append", index=False)
        data["lines"].to_sql("lines", conn, if_exists="append", index=False)
    engine.dispose()
    return url


def _broken_lines(url: str) -> int:
    lines = read_tables(url, reflect(url))["lines"]
    return int((np.abs(lines["line_total"] - lines["unit_price"] * lines["quantity"]) > 0.01).sum())


def test_found_rules_are_switched_off_from_the_command_line_and_the_job_file(tmp_path):
    source = _shop_file(tmp_path)
    out = tmp_path / "kept.sqlite"
    result = CliRunner().invoke(cli, ["clone", source, str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert _broken_lines(f"sqlite:///{out}") == 0
    off = tmp_path / "off.sqlite"
    result = CliRunner().invoke(cli, ["clone", source, str(off), "--seed", "3", "--skip-rule",
                                      "lines: line_total = unit_price * quantity"])
    assert result.exit_code == 0, result.output
    assert _broken_lines(f"sqlite:///{off}") > 0
    none = tmp_path / "none.sqlite"
    result = CliRunner().invoke(cli, ["clone", source, str(none), "--no-found-rules"])
    assert result.exit_code == 0, result.output
    assert _broken_lines(f"sqlite:///{none}") > 0
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{source}"\ntarget = "{tmp_path / "job.sqlite"}"\nseed = 3\n'
                   'skip_rules = ["lines: line_total = unit_price * quantity"]\n')
    run_job(load_job(job))
    assert _broken_lines(f"sqlite:///{tmp_path / 'job.sqlite'}") > 0
    job.write_text(f'source = "{source}"\ntarget = "{tmp_path / "bad.sqlite"}"\n'
                   'skip_rules = "lines: line_total"\n')
    with pytest.raises(ConfigError, match="skip_rules.*a list of found rules"):
        load_job(job)


def test_the_report_counts_the_sums(fitted):
    synthesizer, data = fitted
    report = evaluate(data, synthesizer.sample(), synthesizer.get_metadata())
    rules = {f["check"]: f for f in report.validity if f["check"].startswith("rule ")}
    for name in ("rule invoice.total = sum(lines.unit_price * lines.quantity) (found in the data)",
                 "rule line_total = unit_price * quantity (found in the data)"):
        assert (rules[name]["violations"], rules[name]["real_violations"]) == (0, 0)


def test_reflect_and_plan_list_the_rules(tmp_path):
    source = _shop_file(tmp_path)
    engine = sa.create_engine(source)
    with engine.begin() as conn:  # a CHECK that translates and one that does not
        conn.exec_driver_sql("CREATE TABLE notes (note_id INTEGER PRIMARY KEY, "
                             "stars INTEGER CHECK (stars BETWEEN 1 AND 5), "
                             "body TEXT CHECK (length(body) > 2))")
        conn.exec_driver_sql(  # 150 rows: not a reference table copied as it is
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150) "
            "INSERT INTO notes SELECT i, 1 + i % 5, 'note ' || i FROM n")
    engine.dispose()
    result = CliRunner().invoke(cli, ["reflect", source])
    assert result.exit_code == 0, result.output
    assert "notes: 1 <= stars <= 5 (a CHECK of the source)" in result.output
    assert "notes: CHECK (length(body) > 2) (evaluated by the target database" in result.output
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{source}"\ntarget = "{tmp_path / "out.sqlite"}"\nseed = 3\n'
                   f'skip_rules = ["invoice: gross = net + tax"]\n'
                   f'[model]\npath = "{tmp_path / "model.json"}"\n')
    before = format_plan(plan_job(load_job(job)))
    assert "lines: line_total = unit_price * quantity (proposed: found in a sample of the rows" \
        in before  # reflect's proposals, before any fit
    assert "invoice: gross = net + tax (proposed" in before \
        and "gross = net + tax (proposed: found in a sample of the rows; kept if every row " \
            "holds it at fit)  [left out: skip_rules]" in before
    assert "(on every row; also sums over children and two key paths): at fit" in before
    run_job(load_job(job))
    after = format_plan(plan_job(load_job(job)))  # the saved model's rules
    assert "lines: line_total = unit_price * quantity (found in the data)" in after
    assert "invoice: invoice.total = sum(lines.unit_price * lines.quantity) (found in the data)" \
        in after
    assert "gross = net + tax" not in after


def _obvious_sums(metadata: Metadata, data: dict) -> list[str]:
    """The first term (in find_sums' order) whose rule holds in every parent row, per parent
    column, each checked alone with ParentSum's own group-by."""
    from itertools import combinations

    from hma_db.schema.rules.sums import MIN_PARENTS, ParentSum, decimals, numbers
    out = []
    sources = ["a", "b", "c"]
    for target in ("t0", "t1", "t2", "t3", "t4"):
        value = numbers(data["p"][target])
        if (~np.isnan(value)).sum() < MIN_PARENTS or not np.nanstd(value) > 0:
            continue
        for term in [list(p) for p in combinations(sources, 2)] + [[c] for c in sources]:
            rule = ParentSum(target, "k", "ref", "id", term, decimals(value), table_name="p")
            if rule.is_valid_tables(data).all():
                out.append(rule.describe())
                break
    return out


def _families(seed: int, keys) -> tuple[Metadata, dict]:
    rng = np.random.default_rng(seed)
    parents = len(keys)
    ref = rng.choice(np.asarray(keys, dtype=object), 400).astype(type(keys[0]))
    child = pd.DataFrame({"id": range(400), "ref": ref,
                          "a": np.round(rng.uniform(0, 9, 400), 2),
                          "b": rng.integers(1, 4, 400).astype(float),
                          "c": np.round(rng.uniform(-1e9, 1e9, 400), 1)})
    child.loc[rng.random(400) < 0.05, "a"] = np.nan  # NULL terms: left out of a sum
    child.loc[rng.random(400) < 0.05, "ref"] = None  # children of no parent
    child["ref"] = child["ref"].infer_objects()
    by = child.dropna(subset=["ref"])
    sums = {t: pd.Series(v).groupby(by["ref"].to_numpy()).sum() for t, v in {
        "ab": (by["a"] * by["b"]).to_numpy(), "c": by["c"].to_numpy()}.items()}
    parent = pd.DataFrame({"id": keys})
    parent["t0"] = parent["id"].map(sums["ab"]).fillna(0.0).round(2)  # sum(a * b)
    parent["t1"] = parent["t0"] + np.where(np.arange(parents) == parents - 1, 0.02, 0.0)
    parent["t2"] = parent["id"].map(sums["c"]).fillna(0.0)  # large values, one decimal
    parent["t3"] = parent["t2"].where(rng.random(parents) > 0.2)  # NULL in some parents
    parent["t4"] = rng.uniform(0, 50, parents).round(2)  # no sum
    columns = {"id": {"sdtype": "id"}, **{f"t{k}": {"sdtype": "numerical"} for k in range(5)}}
    child_columns = {"id": {"sdtype": "id"}, "ref": {"sdtype": "id"},
                     **{c: {"sdtype": "numerical"} for c in "abc"}}
    metadata = Metadata.from_dict({
        "tables": {"p": {"primary_key": "id", "columns": columns},
                   "k": {"primary_key": "id", "columns": child_columns}},
        "relationships": [{"parent_table_name": "p", "parent_primary_key": "id",
                           "child_table_name": "k", "child_foreign_key": "ref"}]})
    return metadata, {"p": parent, "k": child}


@pytest.mark.parametrize("keys", [list(range(60)), list(range(60))[::-1],
                                  [f"k{i}" for i in range(60)], [3 * i for i in range(60)]])
@pytest.mark.parametrize("seed", range(3))
def test_the_screened_sums_are_the_sums_each_term_alone_finds(seed, keys):
    from hma_db.schema import find_sums
    metadata, data = _families(seed, keys)
    found = [r.describe() for r in find_sums(metadata, data, {"p", "k"})]
    assert found == _obvious_sums(metadata, data)
    assert "p.t0 = sum(k.a * k.b)" in found and "p.t2 = sum(k.c)" in found  # can fail
    assert not any(r.startswith(("p.t1", "p.t4")) for r in found)


def _obvious_formula(frame: pd.DataFrame, names: list[str]) -> str | None:
    """Every target, operation and pair in order, each checked on every row."""
    from itertools import combinations

    from hma_db.schema.rules.sums import MIN_PARENTS, RowFormula, decimals, numbers
    for target in names:
        value = numbers(frame[target])
        if (~np.isnan(value)).sum() < MIN_PARENTS:
            continue
        others = [c for c in names if c != target]
        for operation in ("product", "sum"):
            for a, b in combinations(others, 2):
                rule = RowFormula(target, [a, b], operation, decimals(value), table_name="t")
                present = ~np.isnan(value) & ~np.isnan(rule.value(frame))
                if present.sum() >= MIN_PARENTS and rule.is_valid(frame).to_numpy()[present].all():
                    return rule.describe()
    return None


@pytest.mark.parametrize("case", ["product", "rounded", "sum", "late", "none", "nulls"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cells", [None, 1])
def test_the_screened_formula_is_the_first_each_triple_alone_finds(case, seed, cells,
                                                                   monkeypatch):
    from hma_db.schema import find_formulas
    from hma_db.schema.rules import sums
    if cells:
        monkeypatch.setattr(sums, "_FORMULA_CELLS", cells)  # one target per step
    rng = np.random.default_rng(seed)
    rows = 80
    frame = pd.DataFrame({"id": range(rows), **{c: np.round(rng.uniform(1, 9, rows), 2)
                                                for c in "uvwxy"}})
    frame["q"] = rng.integers(1, 5, rows).astype(float)
    if case == "product":
        frame["v"] = np.round(frame["u"] * frame["q"], 2)
    elif case == "rounded":  # within the rounding of its 2 decimals, not exactly
        frame["v"] = np.round(frame["u"] * frame["w"], 2)
    elif case == "sum":
        frame["y"] = np.round(frame["w"] + frame["x"], 2)
    elif case == "late":  # holds on the screened rows only, broken later
        frame["y"] = np.round(frame["w"] + frame["x"], 2)
        frame.loc[rows - 1, "y"] += 1
    elif case == "nulls":  # targets and terms NULL in some rows, first rows among them
        frame["y"] = np.round(frame["w"] * frame["q"], 3)
        frame.loc[[0, 1, 5], "y"] = np.nan
        frame.loc[[2, 7, 40], "w"] = np.nan
        frame.loc[rng.random(rows) < 0.3, "u"] = np.nan
    columns = {"id": {"sdtype": "id"}, **{c: {"sdtype": "numerical"} for c in frame.columns[1:]}}
    metadata = Metadata.from_dict({"tables": {"t": {"primary_key": "id", "columns": columns}}})
    found = [r.describe() for r in find_formulas(metadata, {"t": frame}, {"t"})]
    expected = _obvious_formula(frame, list(frame.columns[1:]))
    assert found == ([] if expected is None else [expected])
    assert (expected is None) == (case in ("none", "late"))  # the cases have formulas to find


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # decimals() of infinity
def test_the_decimals_of_columns_at_once_are_each_columns():
    from hma_db.schema.rules.sums import _column_decimals, decimals
    rng = np.random.default_rng(0)
    matrix = np.column_stack([np.round(rng.uniform(0, 100, 50), d) for d in range(8)]
                             + [np.full(50, np.nan), np.r_[np.inf, np.ones(49)],
                                np.r_[np.nan, np.round(rng.uniform(0, 1, 49), 3)]])
    assert _column_decimals(matrix) == [decimals(matrix[:, k]) for k in range(matrix.shape[1])]
