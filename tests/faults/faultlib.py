"""Helpers shared by the fault, bad-input and secret tests (tests/faults).

* :func:`run_module` / :func:`start_module` run one of our modules through ``ansible localhost -m ...`` (results
  printed as JSON, so they can be read back); the connection URL travels in the environment
  (``YUANTUS_DATABASE_URL``), never on the command line.
* :func:`run_playbook` runs one of ``playbooks/*.yml``.
* :func:`fingerprint` is the parity check: an md5 over every ``meta_items`` row (all columns but ``created_at``,
  ordered by id), plus counts of duplicates and of legacy rows missing from ``meta_items``.
* :func:`clone_database` restores a seeded database in well under a second (``CREATE DATABASE ... TEMPLATE``), so
  a fault test can afford many fresh 100k-row databases.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psycopg
from proctree import cmdline, descendants
from psycopg import sql
from yuantus_fixture import create_scope_database, seed_legacy

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
FAULT_ROWS = 100_000
FAULT_SEED = 20260531
FAULT_EXISTING_ITEMS = 25  # legacy ids that already exist in meta_items as unrelated items: never touched


def seed_fault_database(cluster: Any, name: str, rows: int = FAULT_ROWS) -> dict[str, Any]:
    """Create ``name`` with the minimal schema and the fault tests' deterministic legacy data."""
    scope = create_scope_database(cluster, name, "minimal")
    with scope.connect() as conn:
        return seed_legacy(conn, rows, seed=FAULT_SEED, existing_items=FAULT_EXISTING_ITEMS)


@dataclass
class Run:
    """One finished ``ansible``/``ansible-playbook`` process."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    elapsed: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.stdout + "\n" + self.stderr

    def results(self) -> list[dict[str, Any]]:
        """Every host result printed as JSON (``host | STATUS => {...}`` ad hoc, ``fatal: [host]: ...`` in plays).

        Each result gets ``_host`` and ``_status`` (``SUCCESS``, ``CHANGED``, ``FAILED!``, ``ok``, ``fatal``...).
        """
        found = []
        decoder = json.JSONDecoder()
        for match in _RESULT_LINE.finditer(self.stdout):
            try:
                value, end = decoder.raw_decode(self.stdout, match.end())
            except ValueError:
                continue
            if isinstance(value, dict):
                host = match.group("host") or match.group("host2")
                found.append(dict(value, _host=host, _status=match.group("status") or match.group("status2"),
                                  _ignored=self.stdout[end:end + 20].lstrip().startswith("...ignoring")))
        return found

    def host_result(self, host: str = "localhost") -> dict[str, Any]:
        """The last JSON result printed for ``host`` (ad hoc: the module's result)."""
        found: dict[str, Any] = {}
        for result in self.results():
            if result["_host"] == host:
                found = result
        return found

    def failed_results(self) -> list[dict[str, Any]]:
        """Every failed result that is not ignored, in order."""
        return [result for result in self.results()
                if result["_status"] in ("FAILED!", "fatal", "UNREACHABLE!") and not result["_ignored"]]

    def messages(self) -> str:
        """Every failure message (and the raw text), for assertions on what the operator sees."""
        parts = [str(result.get("msg", "")) for result in self.failed_results()]
        return "\n".join(parts + [self.text])


_RESULT_LINE = re.compile(
    r"^(?:(?P<host>\S+) \| (?P<status>SUCCESS|CHANGED|FAILED!|UNREACHABLE!) => "
    r"|(?P<status2>ok|changed|fatal|failed): \[(?P<host2>[^\]]+)\](?: => \(item=.*?\))?: ?(?:FAILED! |UNREACHABLE! )?=> )",
    re.MULTILINE,
)


def ansible_env(base_env: dict[str, str], **extra: str) -> dict[str, str]:
    """``base_env`` without any ``YUANTUS_*`` variable, results printed as JSON."""
    env = dict(base_env)
    for key in [key for key in env if key.startswith("YUANTUS_")]:
        del env[key]
    env.update({"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    env.update(extra)
    return env


def module_argv(module: str, args: dict[str, Any], *extra: str) -> list[str]:
    """``ansible localhost -m yuantus.relmigrate.<module> -a '<json>'`` (local connection, no inventory file)."""
    return ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", f"yuantus.relmigrate.{module}",
            "-a", json.dumps(args), *extra]


def start_module(env: dict[str, str], module: str, args: dict[str, Any], url: str | None = None,
                 **env_extra: str) -> subprocess.Popen[str]:
    """Start an ad-hoc module run in its own process group (so a test can kill all of it)."""
    run_env = ansible_env(env, **env_extra)
    if url is not None:
        run_env["YUANTUS_DATABASE_URL"] = url
    return subprocess.Popen(module_argv(module, args), env=run_env, cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen[str], started: float, timeout: float = 300) -> Run:
    """Wait for ``proc`` and collect its output."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args!r} did not finish within {timeout}s:\n{out}\n{err}") from None
    return Run(list(proc.args), proc.returncode, out, err, time.monotonic() - started)


def run_module(env: dict[str, str], module: str, args: dict[str, Any], url: str | None = None,
               timeout: float = 300, **env_extra: str) -> Run:
    """Run an ad-hoc module to completion."""
    started = time.monotonic()
    return finish(start_module(env, module, args, url, **env_extra), started, timeout)


def playbook_argv(playbook: str, inventory: Path | str, *extra: str) -> list[str]:
    return ["ansible-playbook", str(PLAYBOOKS / playbook), "-i", str(inventory), *extra]


def run_playbook(env: dict[str, str], playbook: str, inventory: Path | str, *extra: str, timeout: float = 600,
                 json_output: bool = True, **env_extra: str) -> Run:
    """Run ``playbooks/<playbook>`` from the playbooks directory (its ansible.cfg applies)."""
    run_env = ansible_env(env, **env_extra) if json_output else dict(env, **env_extra)
    run_env.setdefault("ANSIBLE_CONFIG", str(PLAYBOOKS / "ansible.cfg"))
    started = time.monotonic()
    proc = subprocess.Popen(playbook_argv(playbook, inventory, *extra), env=run_env, cwd=str(PLAYBOOKS),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return finish(proc, started, timeout)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """kill -9 ansible and everything below it: its process group and the (setsid'd) workers and modules."""
    victims = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def module_child(proc: subprocess.Popen[str], name: str = "AnsiballZ_") -> int | None:
    """Pid of the AnsiballZ python process below ``proc`` (None when it is not running)."""
    for pid in descendants(proc.pid):
        line = cmdline(pid)
        if name in line and "python" in line and not line.startswith("/bin/sh"):
            return pid
    return None


# -- databases --------------------------------------------------------------------------------------------------


def clone_database(cluster: Any, template: str, prefix: str = "f") -> str:
    """CREATE DATABASE <new> TEMPLATE <template>; returns the new name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    cluster.create_database(name, template=template)
    return name


FINGERPRINT_SQL = """
SELECT count(*),
       count(DISTINCT id),
       md5(coalesce(string_agg((to_jsonb(m) - 'created_at')::text, E'\\n' ORDER BY id), '')),
       (SELECT count(*) FROM meta_relationships r WHERE NOT EXISTS (SELECT 1 FROM meta_items i WHERE i.id = r.id)),
       (SELECT md5(coalesce(string_agg((to_jsonb(t) - 'uuid')::text, E'\\n' ORDER BY id), ''))
          FROM meta_item_types t),
       (SELECT md5(coalesce(string_agg(to_jsonb(r)::text, E'\\n' ORDER BY id), '')) FROM meta_relationships r)
FROM meta_items m
"""


def fingerprint(conn: psycopg.Connection) -> dict[str, Any]:
    """Parity fingerprint of a scope database (identical across clusters for the same seed)."""
    rows, distinct, items_md5, missing, types_md5, legacy_md5 = conn.execute(FINGERPRINT_SQL).fetchone()
    return {"rows": rows, "duplicates": rows - distinct, "items_md5": items_md5, "missing_legacy": missing,
            "item_types_md5": types_md5, "legacy_md5": legacy_md5}


def ledger_problems(conn: psycopg.Connection) -> list[str]:
    """Inconsistencies in the ledger: an id claimed by two live runs, or a run whose count disagrees."""
    problems = []
    if conn.execute("SELECT to_regclass('relmigrate.runs') IS NULL").fetchone()[0]:
        return problems
    twice = conn.execute(
        "SELECT count(*) FROM (SELECT w.id FROM relmigrate.run_batches b JOIN relmigrate.runs u USING (run_id), "
        "unnest(b.item_ids) AS w(id) WHERE u.status <> 'rolled_back' GROUP BY w.id HAVING count(*) > 1) d"
    ).fetchone()[0]
    if twice:
        problems.append(f"{twice} ids recorded by two runs")
    off = conn.execute(
        "SELECT u.run_id, u.migrated, coalesce(sum(cardinality(b.item_ids)), 0) FROM relmigrate.runs u "
        "LEFT JOIN relmigrate.run_batches b USING (run_id) GROUP BY u.run_id, u.migrated "
        "HAVING u.migrated <> coalesce(sum(cardinality(b.item_ids)), 0)"
    ).fetchall()
    problems.extend(f"run {run} says migrated={said}, its batches hold {held}" for run, said, held in off)
    ghosts = conn.execute(
        "SELECT count(*) FROM relmigrate.run_batches b JOIN relmigrate.runs u USING (run_id), "
        "unnest(b.item_ids) AS w(id) WHERE u.status <> 'rolled_back' "
        "AND NOT EXISTS (SELECT 1 FROM meta_items i WHERE i.id = w.id)"
    ).fetchone()[0]
    if ghosts:
        problems.append(f"{ghosts} ledger ids are not in meta_items")
    return problems


def database_checksums(cluster: Any, names: list[str]) -> dict[str, dict[str, str]]:
    """table_checksums of each database (every table of public and relmigrate) plus its schema list."""
    from yuantus_fixture import table_checksums

    out = {}
    for name in names:
        with cluster.connect(name) as conn:
            sums = table_checksums(conn)
            sums["_schemas"] = ",".join(row[0] for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' ORDER BY 1").fetchall())
            out[name] = sums
    return out


def database_names(cluster: Any) -> list[str]:
    with cluster.connect() as conn:
        return [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1").fetchall()]


def wait_for(predicate: Any, timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def quote_ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def write_inventory(path: Path, hosts: dict[str, dict[str, Any]], **common: Any) -> Path:
    """A JSON (= YAML) inventory, mode 0600 (it may hold URLs with passwords); local connection, the venv's python."""
    common.setdefault("ansible_connection", "local")
    common.setdefault("ansible_python_interpreter", str(REPO / ".venv" / "bin" / "python"))
    path.write_text(json.dumps({"all": {"vars": common, "hosts": hosts}}, indent=1, ensure_ascii=False),
                    encoding="utf-8")
    path.chmod(0o600)
    return path


class ProcWatch:
    """Poll every process's command line (and pg_dump's environment) while a playbook runs.

    ``hits`` lists the processes whose command line held a secret (``env_hits``: whose environment did, e.g. a
    PGPASSWORD set by a module for its child, which only the same user and root can read); ``seen`` counts the
    processes matching ``watch_for`` (e.g. ``pg_dump``) that were observed, to prove the poll covered them.
    """

    def __init__(self, secrets: list[str], watch_for: str = "pg_dump", interval: float = 0.005,
                 on_seen: Any = None) -> None:
        import threading

        self.secrets = [secret.encode() for secret in secrets if secret]
        self.watch_for = watch_for.encode()
        self.interval = interval
        self.on_seen = on_seen
        self.hits: list[str] = []  # command lines (world-readable: a leak)
        self.env_hits: list[str] = []  # environments (readable by the same user and root only: recorded)
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == me:
                    continue
                try:
                    line = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                watched = self.watch_for in line
                if watched and int(entry.name) not in self.seen:
                    self.seen.add(int(entry.name))
                    if self.on_seen is not None:
                        self.on_seen(int(entry.name))
                blobs = [line]
                if watched:
                    try:
                        blobs.append((entry / "environ").read_bytes())
                    except OSError:
                        pass
                for kind, blob in zip(("cmdline", "environ"), blobs):
                    for secret in self.secrets:
                        if secret in blob:
                            where = [item.split(b"=", 1)[0].decode(errors="replace") for item in blob.split(b"\0")
                                     if secret in item] if kind == "environ" else []
                            (self.hits if kind == "cmdline" else self.env_hits).append(
                                f"pid {entry.name} {kind} {where}: {line[:120]!r}")
            time.sleep(self.interval)
