"""PostgreSQL's own DDL for the chosen tables: ``pg_dump --schema-only``, filtered.

pg_dump writes one entry per object, each under a header comment
(``-- Name: de_person; Type: TABLE; Schema: public; Owner: -``) and with every name qualified by
its schema. An entry is kept when it is a chosen table or a partition attached to one; when it
depends on kept relations only (its defaults, constraints, indexes, triggers, comments, partition
attachments, views over kept relations); or when a kept entry names it (types, domains,
sequences, functions). Session settings (``SET``, ``set_config``), ``\\restrict`` lines,
extensions, schemas, owners and privileges are left out. pg_dump's order is kept: it already
puts what an object needs before it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

import sqlalchemy as sa

logger = logging.getLogger(__name__)

PG_DUMP = "pg_dump"
# Seconds pg_dump may take; the schema of a 3,000-table database dumps in a few seconds.
DUMP_TIMEOUT = 300

# URL query options that libpq reads from the environment as well (pg_dump takes no URL here:
# its password would show in the process list).
_LIBPQ_ENV = {"host": "PGHOST", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
              "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "connect_timeout": "PGCONNECT_TIMEOUT",
              "options": "PGOPTIONS", "target_session_attrs": "PGTARGETSESSIONATTRS"}
_HEADER = re.compile(r"^-- Name: (.*); Type: ([A-Z ]+); Schema: (.*?); Owner: ")
_DOLLAR = re.compile(r"\$[A-Za-z_]*\$")
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_QUALIFIED = re.compile(rf"(?<![\w$.\"])({_IDENT})\.({_IDENT})")
# Objects that exist for what uses them: kept when a kept entry names them.
_SUPPORT = {"TYPE", "DOMAIN", "FUNCTION", "PROCEDURE", "SEQUENCE", "AGGREGATE", "COLLATION",
            "OPERATOR", "CAST", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY"}
_RELATIONS = {"TABLE", "VIEW"}
# Never copied: the target's own business, or needing rights a loader may not have.
_SKIPPED = {"SCHEMA", "EXTENSION", "ACL", "DEFAULT ACL", "MATERIALIZED VIEW",
            "MATERIALIZED VIEW DATA", "PUBLICATION", "PUBLICATION TABLE", "SUBSCRIPTION",
            "EVENT TRIGGER", "FOREIGN TABLE", "SERVER", "USER MAPPING",
            "FOREIGN DATA WRAPPER", "SECURITY LABEL"}


@dataclass
class _Entry:
    kind: str
    schema: str
    name: str
    statements: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.schema, self.name.split("(")[0]  # a function's name without its arguments


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _ends_statement(line: str, tag: str | None) -> tuple[bool, str | None]:
    """Whether ``line`` ends a statement, and the dollar-quote tag open after it."""
    for match in _DOLLAR.finditer(line):
        if tag is None:
            tag = match.group()
        elif match.group() == tag:
            tag = None
    return tag is None and line.rstrip().endswith(";"), tag


def _session_line(statement: str) -> bool:
    head = statement.lstrip().upper()
    return (head.startswith(("SET ", "SELECT PG_CATALOG.SET_CONFIG", "\\RESTRICT", "\\UNRESTRICT"))
            or re.search(r"\bOWNER TO\b", head) is not None)


def parse_dump(text: str) -> list[_Entry]:
    """The entries of a pg_dump script, each with its statements."""
    entries: list[_Entry] = []
    current: list[str] = []
    tag = None
    for line in text.splitlines():
        if not current and tag is None:
            header = _HEADER.match(line)
            if header:
                entries.append(_Entry(header.group(2), header.group(3), header.group(1)))
                continue
            if not line.strip() or line.startswith("--") or line.startswith("\\"):
                continue
        current.append(line)
        done, tag = _ends_statement(line, tag)
        if done:
            statement = "\n".join(current)
            current = []
            if entries and not _session_line(statement):
                entries[-1].statements.append(statement)
    return entries


def _references(entry: _Entry, known: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    """The known objects an entry names (``schema.name``, also inside ``'...'::regclass``)."""
    found = set()
    for statement in entry.statements:
        for match in _QUALIFIED.finditer(statement):
            key = (_unquote(match.group(1)), _unquote(match.group(2)))
            if key in known and key != entry.key:
                found.add(key)
    return found


def _partitions(entries: list[_Entry], known, chosen: set[tuple[str, str]]) -> dict:
    """``{partition: its chosen root}`` for the partitions attached (at any depth) to ``chosen``."""
    parent_of = {}
    for entry in entries:
        if entry.kind == "TABLE ATTACH":
            refs = [(_unquote(a), _unquote(b)) for s in entry.statements
                    for a, b in _QUALIFIED.findall(s) if (_unquote(a), _unquote(b)) in known]
            if len(refs) >= 2:
                parent_of[refs[1]] = refs[0]
    roots = {}
    for part in parent_of:
        root = part
        while root in parent_of:
            root = parent_of[root]
        if root in chosen:
            roots[part] = root
    return roots


def filter_entries(entries: list[_Entry], chosen: dict[tuple[str, str], str]
                   ) -> list[tuple[_Entry, frozenset[str]]]:
    """The entries the chosen tables (``{(schema, table): table}``) need, each with the chosen
    tables it depends on, in pg_dump's order."""
    known = {e.key: e.kind for e in entries if e.kind in _SUPPORT | _RELATIONS}
    roots = _partitions(entries, known, set(chosen))
    needs = {key: frozenset([t]) for key, t in chosen.items()}
    needs.update({p: needs[r] for p, r in roots.items()})
    refs = {id(e): _references(e, known) for e in entries}
    kept: dict[int, frozenset[str]] = {}
    changed = True
    while changed:  # until nothing more is kept: a view over a view, a type a domain uses
        changed = False
        named = set().union(*(refs[i] for i in kept)) if kept else set()
        for entry in entries:
            if id(entry) in kept or entry.kind in _SKIPPED:
                continue
            tables = _tables_needed(entry, refs[id(entry)], known, needs, named)
            if tables is not None:
                kept[id(entry)] = tables
                changed = True
                if entry.kind == "VIEW":
                    needs[entry.key] = tables
    return [(e, kept[id(e)]) for e in entries if id(e) in kept]


def _tables_needed(entry: _Entry, refs, known, needs, named) -> frozenset | None:
    """The chosen tables an entry needs if it is to be kept, else None."""
    if entry.kind == "TABLE":
        return needs.get(entry.key)
    used = {r for r in refs if known[r] in _RELATIONS}
    if entry.kind in _SUPPORT and not used:
        return frozenset() if entry.key in named else None
    if used:
        if not used <= set(needs):
            return None
        return frozenset().union(*(needs[r] for r in used))
    return frozenset() if refs and all(r in named for r in refs) else None


def _run_pg_dump(url: sa.URL, section: str) -> str:
    args = [PG_DUMP, "--schema-only", f"--section={section}", "--no-owner", "--no-privileges",
            "--no-tablespaces", "--no-security-labels", "--no-publications",
            "--no-subscriptions"]
    for option, value in (("--host", url.host), ("--port", url.port),
                          ("--username", url.username)):
        if value is not None:
            args += [option, str(value)]
    args.append(f"--dbname={url.database or 'postgres'}")
    env = {**os.environ}
    for key, variable in _LIBPQ_ENV.items():  # sslmode=require and the like, from the URL
        value = url.query.get(key)
        if isinstance(value, str):
            env[variable] = value
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)  # never on the command line (ps shows it)
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=DUMP_TIMEOUT,
                          check=False)
    if done.returncode != 0:
        # e.g. "pg_dump: error: aborting because of server version mismatch pg_dump: detail:
        # server version: 16.2; pg_dump version: 15.20": one line, both parts
        message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise RuntimeError(message.replace(str(url.password), "***") if url.password else message)
    return done.stdout


def capture_postgresql(conn: sa.Connection, schema: str | None, tables: list[str],
                       table_schemas: dict[str, str]) -> tuple | None:
    """``(schemas, pre-data, post-data)`` of ``pg_dump``'s statements for ``tables``, each
    statement as ``(kind, name, chosen tables it needs, sql)``; or None (and one warning) when
    pg_dump is missing or refuses the server."""
    if shutil.which(PG_DUMP) is None:
        logger.warning("pg_dump is not installed (Debian: postgresql-client); a same-dialect "
                       "target is created from the translated tables")
        return None
    own = schema or conn.exec_driver_sql("SELECT current_schema()").scalar()
    chosen = {(table_schemas.get(t, own), t): t for t in tables}
    try:
        parsed = {section: parse_dump(_run_pg_dump(conn.engine.url, section))
                  for section in ("pre-data", "post-data")}
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("pg_dump failed (%s); a same-dialect target is created from the "
                       "translated tables", exc)
        return None
    post = {id(e) for e in parsed["post-data"]}  # filtered together: a trigger names a function
    kept = filter_entries(parsed["pre-data"] + parsed["post-data"], chosen)
    sections = [[(entry.kind, entry.name, needed, statement)
                 for entry, needed in kept if (id(entry) in post) == is_post
                 for statement in entry.statements] for is_post in (False, True)]
    schemas = tuple(dict.fromkeys(s for s, _ in chosen))
    return schemas, sections[0], sections[1]
