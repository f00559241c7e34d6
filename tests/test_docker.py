"""docker/: what can be checked without a Docker engine.

The compose file parses; every path it names exists; the job file its one-shot service runs
loads with the environment the service sets; the URLs match the database services' credentials;
the Dockerfile's COPY sources exist in the build context and survive the .dockerignore.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from conftest import CHINOOK_POSTGRES_SQL, ROOT

from hma_db.jobs.file import load_job

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _host_path(spec: str) -> tuple[Path, str]:
    """A bind mount ``host:container[:mode]`` as (host path resolved from docker/, container)."""
    host, container = spec.split(":")[:2]
    return (DOCKER / host).resolve(), container


def _bind_mounts(service: dict) -> list[tuple[Path, str]]:
    return [_host_path(v) for v in service.get("volumes", []) if v.startswith((".", "/"))]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_compose_has_the_three_services_and_waits_for_healthy_databases():
    assert set(SERVICES) == {"source", "target", "seed"}
    for name in ("source", "target"):
        assert SERVICES[name]["image"].startswith("postgres:")
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD-SHELL"
    depends = SERVICES["seed"]["depends_on"]
    assert depends == {"source": {"condition": "service_healthy"},
                       "target": {"condition": "service_healthy"}}
    assert SERVICES["seed"]["restart"] == "no"


def test_every_path_named_by_compose_exists():
    build = SERVICES["seed"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()
    mounts = [m for service in SERVICES.values() for m in _bind_mounts(service)]
    assert mounts, "expected bind mounts for the Chinook script and the job files"
    for host, _ in mounts:
        assert host.exists(), f"compose mounts {host}, which does not exist"
    named = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", [])
             if not v.startswith((".", "/"))}
    assert named <= set(COMPOSE.get("volumes") or {})


def test_source_is_initialised_with_the_chinook_script():
    source = SERVICES["source"]
    init = [host for host, container in _bind_mounts(source)
            if container.startswith("/docker-entrypoint-initdb.d/")]
    assert init == [CHINOOK_POSTGRES_SQL.resolve()]
    script = CHINOOK_POSTGRES_SQL.read_text(encoding="utf-8")
    # The script drops, creates and connects to "chinook": the entrypoint must run it elsewhere.
    assert re.search(r"^\\c chinook", script, re.M)
    assert source["environment"]["POSTGRES_DB"] != "chinook"
    check = source["healthcheck"]["test"][1]
    assert "-d chinook" in check and "-h 127.0.0.1" in check
    table = re.search(r"FROM (\w+)", check).group(1)
    assert re.search(rf"^CREATE TABLE {table}\b", script, re.M | re.I)


def _seed_job_path() -> Path:
    command = SERVICES["seed"]["command"]
    assert command[0] == "run" and len(command) == 2
    job_in_container = command[1]
    for host, container in _bind_mounts(SERVICES["seed"]):
        if job_in_container.startswith(container.rstrip("/") + "/"):
            return host / job_in_container[len(container.rstrip("/")) + 1:]
    raise AssertionError(f"{job_in_container} is not inside any bind mount of the seed service")


def test_the_seed_job_loads_with_the_services_environment():
    environment = SERVICES["seed"]["environment"]
    job = load_job(_seed_job_path(), env=environment)
    source, target = sa.make_url(job.source), sa.make_url(job.target)
    for url, service, database in ((source, "source", "chinook"), (target, "target", None)):
        env = SERVICES[service]["environment"]
        assert url.host == service and url.port == 5432
        assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
        assert url.database == (database or env["POSTGRES_DB"])
        assert url.get_dialect().name == "postgresql"
    model_dir = environment["HMA_DB_MODEL_DIR"]
    assert job.model_path is not None and str(job.model_path).startswith(model_dir)
    assert any(v == f"models:{model_dir}" for v in SERVICES["seed"]["volumes"])


def test_the_seed_job_needs_its_environment_variables():
    from hma_db import ConfigError

    with pytest.raises(ConfigError, match=r"SOURCE_DATABASE_URL.*not set"):
        load_job(_seed_job_path(), env={})


def test_dockerfile_base_user_and_entrypoint():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    entrypoint = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoint == ['["hma-db"]']
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "hma-db" in pyproject["project"]["scripts"]
    installs = [arg for op, arg in instructions if op == "RUN" and "pip install" in arg]
    assert installs and '".[mysql]"' in installs[0]
    assert "mysql" in pyproject["project"]["optional-dependencies"]


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerfile_copy_sources_exist_and_are_not_ignored():
    context = (DOCKER / SERVICES["seed"]["build"]["context"]).resolve()
    ignore = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    copies = [shlex.split(arg) for op, arg in _dockerfile_instructions() if op == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        for source in sources:
            assert (context / source).exists(), f"COPY {source}: not in the build context"
            assert not _ignored(source, ignore), f"COPY {source}: excluded by the .dockerignore"
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("readme")
    if readme:  # pip install needs the readme that pyproject.toml names
        assert any(readme in args[:-1] for args in copies)
