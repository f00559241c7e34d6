"""examples/: each example that can run here runs; the others are checked for what they name."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys

import pytest
import sqlalchemy as sa
import yaml
from conftest import CHINOOK_SQLITE, ROOT

from hma_db.jobs.file import load_job
from hma_db.jobs.run import run_job
from hma_db.model.sample import target_rows

EXAMPLES = ROOT / "examples"


def _counts(path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


def test_chinook_sqlite_job_paths_are_relative_to_the_job_file():
    job = load_job(EXAMPLES / "chinook-sqlite.toml", env={})
    assert job.source == f"sqlite:///{CHINOOK_SQLITE}"
    assert job.target == f"sqlite:///{EXAMPLES / 'chinook-synthetic.sqlite'}"
    assert job.model_path == EXAMPLES / "chinook.model.json"


def test_chinook_sqlite_job_runs_end_to_end_and_reuses_its_model(tmp_path):
    # A copy of the example folder, so the run writes its target and model there.
    for name in ("chinook-sqlite.toml", "chinook.sqlite"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    job = load_job(tmp_path / "chinook-sqlite.toml", env={})
    first = run_job(job)
    source_counts = _counts(tmp_path / "chinook.sqlite")
    assert first.rows == {t: source_counts[t] for t in first.rows}
    assert _counts(tmp_path / "chinook-synthetic.sqlite") == source_counts
    assert first.model == "fitted" and (tmp_path / "chinook.model.json").is_file()
    second = run_job(job)
    assert second.model == "reused" and second.rows == first.rows
    with sqlite3.connect(tmp_path / "chinook-synthetic.sqlite") as conn:
        violations = conn.execute("PRAGMA foreign_key_check").fetchall()
        real_emails = {r[0] for r in sqlite3.connect(CHINOOK_SQLITE).execute(
            "SELECT Email FROM Customer")}
        emails = {r[0] for r in conn.execute("SELECT Email FROM Customer")}
    assert violations == [] and not emails & real_emails


def test_sdv_api_script_runs(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(EXAMPLES / "sdv_api.py"), str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "same rows again: True" in done.stdout
    assert re.search(r"Invoice.Total is modeled with \w+", done.stdout)
    assert (out / "chinook_synthesizer.pkl").is_file()
    source_counts = _counts(CHINOOK_SQLITE)
    copied = {"Genre", "MediaType", "Playlist"}  # reference tables: copied as they are
    for table, rows in source_counts.items():
        with open(out / f"{table}.csv", encoding="utf-8") as handle:
            expected = rows if table in copied else target_rows(rows, 0.5)
            assert sum(1 for _ in handle) - 1 == expected, table


@pytest.mark.postgres
def test_chinook_postgres_job_runs_against_postgres(chinook_postgres, postgres_databases, tmp_path):
    target = postgres_databases.new("example_target")
    env = {"SOURCE_DATABASE_URL": chinook_postgres, "TARGET_DATABASE_URL": target,
           "HMA_DB_MODEL_DIR": str(tmp_path)}
    job = load_job(EXAMPLES / "chinook-postgres.toml", env=env)
    result = run_job(job)
    assert len(result.rows) == 11 and result.rows["invoice"] == 412
    assert (tmp_path / "chinook-postgres.json").is_file()
    assert result.report_path == tmp_path / "chinook-report.html" and result.report_error is None
    assert "<html" in result.report_path.read_text(encoding="utf-8")[:2000].lower()
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM public.track").scalar() == 3503
    engine.dispose()
    assert run_job(job).model == "reused"


def _cron_fields_valid(fields: list[str]) -> bool:
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for text, (low, high) in zip(fields, ranges, strict=True):
        for part in text.split(","):
            value = part.split("/")[0]
            if value == "*":
                continue
            bounds = [int(v) for v in value.split("-")]
            if not all(low <= b <= high for b in bounds):
                return False
    return True


def test_crontab_line():
    lines = [line for line in (EXAMPLES / "crontab").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert _cron_fields_valid(fields[:5])
    command = fields[5]
    match = re.search(r"hma-db run (\S+\.toml)", command)
    assert match and (EXAMPLES / match.group(1).rsplit("/", 1)[-1]).is_file()


def test_kubernetes_cronjob_runs_the_job_with_its_secret():
    text = (EXAMPLES / "kubernetes-cronjob.yaml").read_text()
    documents = list(yaml.safe_load_all(text))
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    assert cronjob["apiVersion"] == "batch/v1"
    assert _cron_fields_valid(cronjob["spec"]["schedule"].split())
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    container = pod["containers"][0]
    command, job_path = container["args"]
    assert command == "run"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert job_path.startswith(mounts["jobs"] + "/")
    assert (EXAMPLES / job_path.rsplit("/", 1)[-1]).is_file()
    # The job's ${VARIABLES}: the URLs from the Secret (its keys, from the kubectl line above
    # it), the model directory from the container's env and mounted on a persistent volume.
    secret = container["envFrom"][0]["secretRef"]["name"]
    assert f"create secret generic {secret}" in text
    env = {name: "postgresql+psycopg://u:p@h/db" for name in
           re.findall(r"--from-literal=(\w+)=", text)}
    env.update({e["name"]: e["value"] for e in container["env"]})
    job = load_job(EXAMPLES / job_path.rsplit("/", 1)[-1], env=env)
    assert str(job.model_path).startswith(mounts["models"])
    claims = {d["metadata"]["name"] for d in documents if d["kind"] == "PersistentVolumeClaim"}
    volume = next(v for v in pod["volumes"] if v["name"] == "models")
    assert volume["persistentVolumeClaim"]["claimName"] in claims
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert f"--uid {pod['securityContext']['runAsUser']}" in dockerfile
