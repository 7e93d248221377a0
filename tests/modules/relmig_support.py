"""Helpers of the module tests: run the modules the way Ansible does, craft legacy data, state MAPPING.md in Python.

The expected rows are computed here from the legacy tables with plain Python, independently of the SQL in
``plugins/module_utils/migration.py``, so a test compares the module's output with the contract, not with itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from proctree import descendants
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
FOUR_TABLES = ("meta_relationships", "meta_relationship_types", "meta_items", "meta_item_types")
MODULE = "yuantus.relmigrate.relationship_items"
INFO_MODULE = "yuantus.relmigrate.relationship_items_info"
ITEM_MAPPED = ("id", "config_id", "item_type_id", "generation", "is_current", "is_versionable", "state",
               "source_id", "related_id", "properties", "created_by_id", "permission_id")
ITEM_TYPE_CREATED = ("id", "label", "description", "uuid", "is_relationship", "is_versionable",
                     "version_control_enabled", "revision_scheme", "source_item_type_id", "related_item_type_id")
ADVISORY_LOCK_KEY = 7170120240531
_ADHOC_LINE = re.compile(r"^localhost \| (?P<status>[A-Z!]+)(?: \| rc=\d+)? => ", re.MULTILINE)


# -- running the modules ------------------------------------------------------------------------------------------
@dataclass
class ModuleRun:
    """One ``ansible localhost -m`` call: exit code, the module's result and everything printed."""

    rc: int
    status: str
    result: dict[str, Any]
    output: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.status.startswith("FAILED") or bool(self.result.get("failed"))

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))


def parse_adhoc(stdout: str) -> tuple[str, dict[str, Any]]:
    """``localhost | CHANGED => {...}`` -> ``("CHANGED", {...})`` (the minimal callback of ad-hoc ``ansible``)."""
    match = _ADHOC_LINE.search(stdout)
    if match is None:
        raise AssertionError(f"no module result in the output of ansible:\n{stdout}")
    result = json.JSONDecoder().raw_decode(stdout[match.end():])[0]
    return match.group("status"), result


class Ansible:
    """Runs this collection's modules with ``ansible localhost -m`` in a subprocess."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.env.update({
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_SYSTEM_WARNINGS": "False",
        })
        for name in ("YUANTUS_DATABASE_URL", "YUANTUS_DATABASE_URL_TEMPLATE", "YUANTUS_TENANCY_MODE"):
            self.env.pop(name, None)

    def argv(self, module: str, args: dict[str, Any], check: bool = False, diff: bool = False) -> list[str]:
        argv = [str(REPO / ".venv" / "bin" / "ansible"), "localhost", "-m", module]
        argv += ["-a", json.dumps(args)] if args else []   # "{}" would be taken as raw params
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        return argv

    def start(self, module: str, args: dict[str, Any], check: bool = False, diff: bool = False,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start the module in its own process group (so that a test can SIGKILL all of it)."""
        return subprocess.Popen(
            self.argv(module, args, check, diff), env={**self.env, **(env or {})}, cwd=str(REPO),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )

    def finish(self, proc: subprocess.Popen[str], started: float | None = None, timeout: float = 180) -> ModuleRun:
        started = started or time.monotonic()
        stdout, stderr = proc.communicate(timeout=timeout)
        status, result = parse_adhoc(stdout)
        return ModuleRun(proc.returncode, status, result, stdout + stderr, time.monotonic() - started)

    def run(self, module: str, args: dict[str, Any], check: bool = False, diff: bool = False,
            env: dict[str, str] | None = None, timeout: float = 180) -> ModuleRun:
        started = time.monotonic()
        return self.finish(self.start(module, args, check, diff, env), started, timeout)

    def playbook(self, module: str, args: dict[str, Any], workdir: Path, check: bool = False,
                 diff: bool = False) -> ModuleRun:
        """Run the module as a playbook task and return the registered result (with ``diff``, ``skipped``...)."""
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "the module", module: args, "register": "relmig_result", "ignore_errors": True},
            {"name": "the result", "ansible.builtin.debug": {"var": "relmig_result"}},
        ]}]
        path = workdir / f"play-{uuid.uuid4().hex[:8]}.yml"
        path.write_text(json.dumps(play))
        argv = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path)]
        argv += ["--check"] if check else []
        argv += ["--diff"] if diff else []
        started = time.monotonic()
        proc = subprocess.run(argv, env={**self.env, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}, cwd=str(REPO),
                              capture_output=True, text=True, timeout=180, check=False)
        marker = proc.stdout.rfind("ok: [localhost] => ")
        assert marker >= 0, proc.stdout + proc.stderr
        shown = json.JSONDecoder().raw_decode(proc.stdout[marker + len("ok: [localhost] => "):])[0]
        result = shown["relmig_result"]
        status = "FAILED!" if result.get("failed") else "SKIPPED" if result.get("skipped") else "OK"
        return ModuleRun(proc.returncode, status, result, proc.stdout + proc.stderr, time.monotonic() - started)

    def migrate(self, url: str, **args: Any) -> ModuleRun:
        check, diff = args.pop("_check", False), args.pop("_diff", False)
        return self.run(MODULE, {"database_url": url, **args}, check=check, diff=diff)

    def info(self, url: str, **args: Any) -> ModuleRun:
        return self.run(INFO_MODULE, {"database_url": url, **args})

    @staticmethod
    def kill(proc: subprocess.Popen[str]) -> None:
        """SIGKILL ansible and every process below it (its workers call setsid: not in its process group)."""
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.communicate(timeout=30)


def ok(run: ModuleRun) -> dict[str, Any]:
    """The result of a run that must have succeeded (else fail the test with its output)."""
    assert run.rc == 0 and not run.failed, run.output
    return run.result


def failed(run: ModuleRun) -> dict[str, Any]:
    """The result of a run that must have failed (else fail the test with its output)."""
    assert run.rc != 0 and run.failed, run.output
    return run.result


# -- database state -----------------------------------------------------------------------------------------------
def checksums(conn: psycopg.Connection) -> dict[str, str]:
    """Fingerprints of the four tables of the migration."""
    out = {}
    for name in FOUR_TABLES:
        out[name] = conn.execute(sql.SQL(
            "SELECT md5(count(*)::text || ':' || coalesce(string_agg(h, '' ORDER BY h), '')) "
            "FROM (SELECT md5(t::text) AS h FROM public.{} AS t) AS s").format(sql.Identifier(name))).fetchone()[0]
    return out


def scalar(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    return conn.execute(query, params).fetchone()[0]


def loads(text: str | None) -> Any:
    """JSON text -> Python, numbers exact (Decimal)."""
    return None if text is None else json.loads(text, parse_float=Decimal)


def columns_of(conn: psycopg.Connection, table: str) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
        "ORDER BY ordinal_position", (table,))]


def item_rows(conn: psycopg.Connection, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """meta_items rows (every column; properties as exact JSON) of ``ids`` (default: the legacy ids)."""
    columns = columns_of(conn, "meta_items")
    select = sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(c)) if c == "properties" else sql.Identifier(c) for c in columns)
    where = sql.SQL("id = ANY(%s)") if ids is not None else sql.SQL("id IN (SELECT id FROM public.meta_relationships)")
    rows = conn.execute(sql.SQL("SELECT {} FROM public.meta_items WHERE {}").format(select, where),
                        (ids,) if ids is not None else None).fetchall()
    out = {}
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        record["properties"] = loads(record["properties"])
        out[record["id"]] = record
    return out


def item_type_rows(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    columns = columns_of(conn, "meta_item_types")
    rows = conn.execute(sql.SQL("SELECT {} FROM public.meta_item_types").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns))).fetchall()
    return {row[0]: dict(zip(columns, row, strict=True)) for row in rows}


def mapped_snapshot(conn: psycopg.Connection) -> dict[str, Any]:
    """What a run produced, comparable across databases: migrated rows (no created_at), item types (no uuid)."""
    items = {key: {c: v for c, v in row.items() if c != "created_at"} for key, row in item_rows(conn).items()}
    types = {key: {c: v for c, v in row.items() if c != "uuid"} for key, row in item_type_rows(conn).items()}
    return {"items": items, "item_types": types}


def expected_items(conn: psycopg.Connection, exclude: set[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """MAPPING.md step 3 in Python: the meta_items row each legacy row maps to (ids in ``exclude`` left out)."""
    types = {row[0]: row[1] or row[0] for row in conn.execute("SELECT id, name FROM meta_relationship_types")}
    permissions = dict(conn.execute("SELECT id, permission_id FROM meta_items").fetchall())
    out = {}
    for rid, type_id, source, related, props, sort_order, state, created_by in conn.execute(
            "SELECT id, relationship_type_id, source_id, related_id, properties::text, sort_order, state, "
            "created_by_id FROM meta_relationships"):
        if rid in exclude:
            continue
        value = loads(props)
        properties = {} if value is None else dict(value)
        if "sort_order" not in properties:
            properties["sort_order"] = sort_order
        out[rid] = {"id": rid, "config_id": rid, "item_type_id": types[type_id], "generation": 1,
                    "is_current": True, "is_versionable": True, "state": state or "Active", "source_id": source,
                    "related_id": related, "properties": properties, "created_by_id": created_by,
                    "permission_id": permissions[source]}
    return out


def assert_items_mapped(conn: psycopg.Connection, expected: dict[str, dict[str, Any]],
                        window: tuple[Any, Any] | None = None) -> None:
    """Every expected row is in meta_items exactly as MAPPING.md says; every other column is NULL."""
    actual = item_rows(conn, list(expected))
    assert set(actual) == set(expected)
    for rid, want in expected.items():
        row = actual[rid]
        assert {c: row[c] for c in ITEM_MAPPED} == want, rid
        others = {c: v for c, v in row.items() if c not in ITEM_MAPPED and c != "created_at"}
        assert all(v is None for v in others.values()), (rid, others)
        assert row["created_at"] is not None
        if window is not None:
            assert window[0] <= row["created_at"] <= window[1], rid


def assert_item_type_created(row: dict[str, Any], item_type_id: str, label: str, source: str, related: str) -> None:
    """MAPPING.md step 2: a created ItemType, column by column (every other column NULL)."""
    assert uuid.UUID(row["uuid"]).version == 4
    want = {"id": item_type_id, "label": label, "description": f"Relationship type for {item_type_id}",
            "is_relationship": "true", "is_versionable": "false", "version_control_enabled": "false",
            "revision_scheme": "A-Z", "source_item_type_id": source, "related_item_type_id": related}
    assert {c: row[c] for c in want} == want
    assert all(v is None for c, v in row.items() if c not in ITEM_TYPE_CREATED), row


def ledger(conn: psycopg.Connection) -> list[dict[str, Any]]:
    if not scalar(conn, "SELECT to_regclass('relmigrate.runs') IS NOT NULL"):
        return []
    cur = conn.execute("SELECT * FROM relmigrate.runs ORDER BY started_at, run_id")
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def ledger_batches(conn: psycopg.Connection, run_id: str | None = None) -> int:
    if not scalar(conn, "SELECT to_regclass('relmigrate.run_batches') IS NOT NULL"):
        return 0
    if run_id is None:
        return scalar(conn, "SELECT count(*) FROM relmigrate.run_batches")
    return scalar(conn, "SELECT count(*) FROM relmigrate.run_batches WHERE run_id = %s", (run_id,))


def block_item(conn: psycopg.Connection, item_id: str) -> None:
    """In ``conn``'s open transaction, insert a meta_items row with ``item_id``: a run that reaches that id waits."""
    conn.execute("INSERT INTO meta_items (id, item_type_id, config_id) VALUES (%s, 'Part', %s)", (item_id, item_id))


def waiting_on_lock(conn: psycopg.Connection, database: str) -> bool:
    """True when a session of the collection in ``database`` is waiting for a lock."""
    return scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
                        "AND wait_event_type = 'Lock'", (database, "yuantus.relmigrate")) > 0


def wait_for(predicate: Any, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- a hand-made legacy data set covering every row of MAPPING.md's two tables -------------------------------------
BIG_NUMBER = "12345678901234567890.12345"  # 25 significant digits: more than a double holds
UNICODE_PROPS = {"note": "Schraube M4 – ø4 mm ✓ café", "uom": "件", "emoji": "😀", "quote": "\"\\/"}
PROPERTIES = {
    "r01": None,                                                # SQL NULL -> {} + sort_order
    "r02": "null",                                              # JSON null -> {} + sort_order
    "r03": '{"sort_order": 99, "a": 1}',                        # sort_order already present: kept
    "r04": json.dumps(UNICODE_PROPS, ensure_ascii=False),       # unicode kept
    "r05": '{"qty": ' + BIG_NUMBER + ', "ref": null}',          # exact number, JSON null value kept
    "r06": "{}",
    "r07": '{"nested": {"a": [1, 2, {"b": "c"}]}, "f": 1.50, "t": true, "sort_order": null}',
    "r08": '{"x": "y"}',
    "r09": '{"preexisting": false}',
}
LEGACY_TYPES = [
    # id, name, label, source, related
    ("lt-a", "Custom Link", "Custom Label", "Part", "Part"),     # new ItemType, label from label
    ("lt-b", "Doc Link", "", "Part", "Document"),                # empty label -> name
    ("lt-c", "", "", "Document", "Part"),                        # empty name -> id (and label -> id)
    ("lt-d", "Part BOM", "BOM", "Part", "Part"),                 # ItemType exists and is complete
    ("lt-e", "Partial Type", "Partial", "Part", "Document"),     # exists: is_relationship false, related NULL
    ("lt-f", "Bare Type", "Bare", "Part", "Part"),               # exists: all three NULL
]
LEGACY_ROWS = [
    # id, type, source, related, sort_order, state, created_by
    ("r01", "lt-a", "P1", "P2", 10, None, 1),
    ("r02", "lt-a", "P2", "P1", 20, "", None),
    ("r03", "lt-b", "P1", "D1", 30, "Released", 1),
    ("r04", "lt-b", "P1", "D1", 40, "Draft", 1),
    ("r05", "lt-c", "D1", "P1", 50, None, 1),
    ("r06", "lt-d", "P1", "P2", 0, "Active", 1),
    ("r07", "lt-e", "P1", "D1", -5, "In Review", None),
    ("r08", "lt-f", "P2", "P2", 80, None, 1),
    ("r09", "lt-a", "P1", "P2", 90, None, 1),                   # its id already exists in meta_items
]
PREEXISTING = {"r09"}


def craft_legacy(conn: psycopg.Connection) -> None:
    """Load the hand-made data set (works on the minimal and on the real schema)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO meta_items (id, item_type_id, config_id, generation, is_current, state, is_versionable, "
            "created_by_id, permission_id, properties) VALUES "
            "('P1', 'Part', 'P1', 1, true, 'Released', true, 1, 'Default', '{\"name\": \"P1\"}'), "
            "('P2', 'Part', 'P2', 1, true, 'Draft', true, 1, NULL, '{\"name\": \"P2\"}'), "
            "('D1', 'Document', 'D1', 1, true, 'Released', true, NULL, 'Default', '{}'), "
            "('r09', 'Part', 'r09', 3, false, 'Obsolete', true, 1, 'Default', '{\"preexisting\": true}')")
        conn.execute(
            "INSERT INTO meta_item_types (id, label, description, uuid, is_relationship, is_versionable, "
            "version_control_enabled, revision_scheme, source_item_type_id, related_item_type_id) VALUES "
            "('Partial Type', 'Keep Me', 'keep this', 'fixed-uuid', false, true, true, '1-9', 'Document', NULL), "
            "('Bare Type', 'Bare', NULL, 'fixed-uuid-2', NULL, NULL, NULL, NULL, NULL, NULL)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO meta_relationship_types (id, name, label, source_item_type, related_item_type, "
                "is_polymorphic, cascade_delete) VALUES (%s, %s, %s, %s, %s, false, false)", LEGACY_TYPES)
            cur.executemany(
                "INSERT INTO meta_relationships (id, relationship_type_id, source_id, related_id, properties, "
                "sort_order, state, created_by_id) VALUES (%s, %s, %s, %s, %s::json, %s, %s, %s)",
                [(rid, t, s, r, PROPERTIES[rid], so, st, cb) for rid, t, s, r, so, st, cb in LEGACY_ROWS])


def break_created_by(conn: psycopg.Connection, ids: list[str], user_id: int = 4242) -> None:
    """Point legacy rows at a user that does not exist (FK triggers off: the real schema has that FK)."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE meta_relationships SET created_by_id = %s WHERE id = ANY(%s)", (user_id, ids))
