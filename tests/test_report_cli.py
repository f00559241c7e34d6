"""The report's surfaces: clone(..., report=path) and `hma-db report -o --json --fail-under`."""

import json

import pytest
from click.testing import CliRunner
from conftest import CHINOOK_SQLITE

from hma_db.cli.main import cli
from hma_db.pipeline import clone


@pytest.fixture(scope="module")
def cloned(tmp_path_factory):
    """Chinook cloned into a SQLite file, with the report written by clone itself."""
    folder = tmp_path_factory.mktemp("report")
    target = f"sqlite:///{folder / 'synthetic.sqlite'}"
    result = clone(f"sqlite:///{CHINOOK_SQLITE}", target, seed=5, report=folder / "clone.json")
    return folder, target, result


def test_clone_writes_the_report(cloned):
    folder, _, result = cloned
    assert result.report is not None and "report" in result.seconds
    data = json.loads((folder / "clone.json").read_text())
    assert data["score"] == pytest.approx(result.report.score)
    assert data["validity"]["passed"] is True
    assert data["privacy"]["passed"] is True


def _report(*args):
    return CliRunner().invoke(cli, ["report", *[str(a) for a in args]])


def test_report_command_writes_html_and_json_and_fails_under_the_threshold(cloned):
    folder, target, result = cloned
    score = result.report.score
    html, js = folder / "report.html", folder / "report.json"
    below = _report(f"sqlite:///{CHINOOK_SQLITE}", target, "-o", html, "--json", js,
                    "--fail-under", f"{min(score + 0.05, 1):.3f}")
    assert below.exit_code == 1, below.output + below.stderr
    assert "--fail-under" in below.stderr
    assert html.read_text().startswith("<!DOCTYPE html>")
    data = json.loads(js.read_text())
    assert data["score"] == pytest.approx(score, abs=1e-9)  # same seed, same sample
    above = _report(f"sqlite:///{CHINOOK_SQLITE}", target, "--fail-under",
                    f"{max(score - 0.05, 0):.3f}")
    assert above.exit_code == 0, above.output + above.stderr
    assert "Score" in above.output


def test_report_on_postgresql_checks_the_target_with_sql(chinook_postgres, postgres_databases,
                                                         tmp_path):
    import sqlalchemy as sa

    from hma_db import evaluate_databases

    target = postgres_databases.new("report")
    result = clone(chinook_postgres, target, seed=2, report=tmp_path / "report.html")
    assert result.report.validity_passed, [c for c in result.report.validity if not c["passed"]]
    assert result.report.privacy_passed, result.report.privacy
    assert (tmp_path / "report.html").stat().st_size > 1_000_000  # plotly.js inline
    engine = sa.create_engine(target)
    with engine.begin() as conn:  # break a range and a NOT NULL; keys are enforced here
        conn.exec_driver_sql("UPDATE invoice SET total = 100000 WHERE invoice_id = 1")
        conn.exec_driver_sql("ALTER TABLE track ALTER COLUMN milliseconds DROP NOT NULL")
        conn.exec_driver_sql("UPDATE track SET milliseconds = NULL WHERE track_id <= 2")
    engine.dispose()
    report = evaluate_databases(chinook_postgres, target)
    failed = {(f["table"], f["check"]): f["violations"] for f in report.validity if not f["passed"]}
    rule = ("rule invoice.total = sum(invoice_line.unit_price * invoice_line.quantity) "
            "(found in the data)")
    assert failed == {("invoice", "within the real range"): 1, ("track", "not null"): 2,
                      ("invoice", rule): 1}  # the broken total breaks the sum found at fit


def test_report_command_on_shapes_chinook_lacks(tmp_path):
    """`hma-db report` on SQLite tables of blobs, mixed types, times of day, text in a DATETIME
    column and an all-NULL foreign key, with a metadata file (no reflected SQL types): the
    command ends, every check passes, and the JSON says what was skipped."""
    from test_report_shapes import _SQLITE, _execute

    from hma_db import reflect

    url = f"sqlite:///{tmp_path / 'shapes.sqlite'}"
    _execute(url, _SQLITE)
    metadata = reflect(url)
    metadata.update_column("parent", "seen", sdtype="datetime")
    metadata.save_to_json(tmp_path / "metadata.json")
    html, js = tmp_path / "report.html", tmp_path / "report.json"
    result = _report(url, url, "--metadata", tmp_path / "metadata.json", "-o", html,
                     "--json", js, "--fail-under", "0.99")
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(js.read_text())
    checks = data["validity"]["checks"]
    assert f"Validity: {len(checks)} of {len(checks)} checks passed" in result.output
    notes = {row["Column"]: row.get("Note") for row in data["details"]["Column Shapes"]}
    assert notes["seen"] == "skipped 8 real and 8 synthetic value(s) that are not datetimes"
    assert "parent.seen: skipped 8 real" in html.read_text()
