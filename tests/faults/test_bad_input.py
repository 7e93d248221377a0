"""Bad input, table-driven, through ``playbooks/migrate.yml`` (and ``rollback.yml`` for the rollback cases).

All migrate.yml cases are hosts of ONE inventory and run in ONE playbook run (forks 10): each host fails on its
own, and its per-scope report says why. Every case must: fail (the play exits non-zero and the scope's report is
``failed``), name the problem, leave every database unchanged (table checksums, no new database), never reach SQL
or a shell unquoted (sanitised tenant ids name a database that does not exist; no file appears where a shell
metacharacter would have created one) and never print a password.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from faultlib import database_checksums, database_names, run_module, run_playbook

SECRET_WRONG = "Wr0ng-Pa55-ZZ9"
READER_PASSWORD = "Rd-0nly-Pw-77x"
MARKER = Path("/tmp/rmf-mark")  # short: a database name longer than 63 bytes is truncated by the server
UNREACHABLE_BOUND = 10 + 25  # the modules' default connect_timeout, plus ansible's own time for that host


def _sanitize(value: str) -> str:
    """Yuantus's rule, written independently of the collection's code (the oracle)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", value.strip()) or "default"


BAD_TENANTS = {
    "tid-sql-quote": "acme'; DROP TABLE meta_items; --",
    "tid-double-quote": 'a"b"c',
    "tid-semicolon": "t1;t2",
    "tid-spaces": "tenant one two",
    "tid-dotdot": "../../etc/passwd",
    "tid-shell": f"$(touch {MARKER})`touch {MARKER}`|&>x",
    "tid-non-ascii": "tenant-\u00fc\u6771\u4eac",
}


class Blackhole:
    """A TCP port that accepts connections and never answers: a host that hangs until connect_timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture(scope="module")
def bad_world(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The databases the cases point at: a seeded scope, one without the migration's tables; a read-only role."""
    from yuantus_fixture import create_scope_database, seed_legacy

    main = create_scope_database(pg_cluster, "bi_main", "minimal", replace=True)
    with main.connect() as conn:
        seed_legacy(conn, 500, seed=3)
    create_scope_database(pg_cluster, "bi_notables", None, replace=True)
    with pg_cluster.connect("bi_notables") as conn:
        conn.execute("CREATE TABLE public.meta_relationships (id varchar PRIMARY KEY)")
    with pg_cluster.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS bi_reader")
    pg_cluster.create_role("bi_reader", READER_PASSWORD)
    with main.connect() as conn:
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO bi_reader")
    hole = Blackhole()
    world = {"cluster": pg_cluster, "tmp": tmp_path_factory.mktemp("bad-input"), "hole": hole,
             "databases": ["bi_main", "bi_notables"]}
    try:
        yield world
    finally:
        hole.close()
        pg_cluster.drop_database("bi_main")
        pg_cluster.drop_database("bi_notables")
        with pg_cluster.connect() as conn:
            conn.execute("DROP ROLE IF EXISTS bi_reader")


def _cases(world: dict[str, Any]) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """host -> (host vars, fragments the failure message must contain)."""
    cluster = world["cluster"]
    base = f"postgresql+psycopg://postgres:{cluster.password}@127.0.0.1:{cluster.port}"
    template = base + "/bi_{tenant_id}"
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "url-garbage": ({"yuantus_database_url": "this is not a url"}, ["malformed"]),
        "url-bad-port": ({"yuantus_database_url": "postgresql+psycopg://postgres:x@127.0.0.1:port/bi_main"},
                         ["malformed"]),
        "url-mysql": ({"yuantus_database_url": "mysql+pymysql://root:x@127.0.0.1:3306/bi_main"},
                      ["not a PostgreSQL URL", "mysql"]),
        "url-sqlite": ({"yuantus_database_url": "sqlite:////tmp/bi_main.db"}, ["not a PostgreSQL URL"]),
        "url-no-database": ({"yuantus_database_url": base}, ["names no database"]),
        "mode-unknown": ({"yuantus_tenancy_mode": "db-per-org", "yuantus_database_url": base + "/bi_main"},
                         ["db-per-org"]),
        "template-no-tenant": ({"yuantus_tenancy_mode": "db-per-tenant", "yuantus_database_url_template": base
                                + "/bi_main", "yuantus_tenant_id": "t1"}, ["no {tenant_id} placeholder"]),
        "template-no-org": ({"yuantus_tenancy_mode": "db-per-tenant-org", "yuantus_database_url_template": template,
                             "yuantus_tenant_id": "t1", "yuantus_org_id": "o1"}, ["no {org_id} placeholder"]),
        "missing-tenant": ({"yuantus_tenancy_mode": "db-per-tenant", "yuantus_database_url_template": template},
                           ["yuantus_tenant_id"]),
        "missing-org": ({"yuantus_tenancy_mode": "db-per-tenant-org",
                         "yuantus_database_url_template": base + "/bi_{tenant_id}__{org_id}",
                         "yuantus_tenant_id": "t1"}, ["yuantus_org_id"]),
        "no-scope-variables": ({}, ["incompletely defined"]),
        "database-missing": ({"yuantus_database_url": base + "/bi_does_not_exist"},
                             ['database "bi_does_not_exist" does not exist']),
        "wrong-password": ({"yuantus_database_url": f"postgresql+psycopg://postgres:{SECRET_WRONG}@127.0.0.1:"
                            f"{cluster.port}/bi_main"},
                           ["password authentication failed", "postgres@127.0.0.1"]),
        "unreachable-host": ({"yuantus_database_url": f"postgresql+psycopg://postgres:x@127.0.0.1:"
                              f"{world['hole'].port}/bi_main"},
                             ["cannot connect", "timeout"]),
        "no-insert-privilege": ({"yuantus_database_url": f"postgresql+psycopg://bi_reader:{READER_PASSWORD}"
                                 f"@127.0.0.1:{cluster.port}/bi_main"},
                                ["lacks", "INSERT on public.meta_items", "nothing was written"]),
        "missing-tables": ({"yuantus_database_url": base + "/bi_notables"},
                           ["lacks table(s)", "meta_items", "meta_item_types"]),
        "batch-size-zero": ({"yuantus_database_url": base + "/bi_main", "migrate_batch_size": 0},
                            ["positive migrate_batch_size"]),
        "batch-size-negative": ({"yuantus_database_url": base + "/bi_main", "migrate_batch_size": -5},
                                ["positive migrate_batch_size"]),
    }
    for host, tenant in BAD_TENANTS.items():
        cases[host] = ({"yuantus_tenancy_mode": "db-per-tenant", "yuantus_database_url_template": template,
                        "yuantus_tenant_id": tenant},
                       [f'database "bi_{_sanitize(tenant)}" does not exist'])
    return cases


def _inventory(world: dict[str, Any], cases: dict[str, tuple[dict[str, Any], list[str]]], path: Path) -> Path:
    common = {"ansible_connection": "local", "ansible_python_interpreter": str(Path(__file__).resolve().parents[2]
                                                                               / ".venv" / "bin" / "python"),
              "relmigrate_backup_dir": str(world["tmp"] / "backups"),
              "relmigrate_report_dir": str(world["tmp"] / "reports"),
              "relmigrate_skip_backup_reason": "bad-input test: every case fails before the copy"}
    data = {"all": {"vars": common, "hosts": {host: host_vars for host, (host_vars, _f) in cases.items()}}}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def migrate_outcome(bad_world: dict[str, Any], faults_env: dict[str, str]) -> dict[str, Any]:
    """One migrate.yml run over every case; the checksums around it."""
    cluster = bad_world["cluster"]
    cases = _cases(bad_world)
    inventory = _inventory(bad_world, cases, bad_world["tmp"] / "inventory.json")
    MARKER.unlink(missing_ok=True)
    names_before = database_names(cluster)
    before = database_checksums(cluster, bad_world["databases"])
    run = run_playbook(faults_env, "migrate.yml", inventory, "-e", "relmigrate_run_id=bad-input", "-f", "10",
                       timeout=600)
    reports = {}
    for host in cases:
        report = bad_world["tmp"] / "reports" / "bad-input" / f"{host}.json"
        reports[host] = json.loads(report.read_text()) if report.is_file() else None
    return {"run": run, "cases": cases, "reports": reports, "names_before": names_before, "before": before,
            "names_after": database_names(cluster), "after": database_checksums(cluster, bad_world["databases"])}


CASE_NAMES = ["url-garbage", "url-bad-port", "url-mysql", "url-sqlite", "url-no-database", "mode-unknown",
              "template-no-tenant", "template-no-org", "missing-tenant", "missing-org", "no-scope-variables",
              "database-missing", "wrong-password", "unreachable-host", "no-insert-privilege", "missing-tables",
              "batch-size-zero", "batch-size-negative", *BAD_TENANTS]


@pytest.mark.parametrize("host", CASE_NAMES)
def test_migrate_playbook_refuses_bad_input(migrate_outcome: dict[str, Any], bad_world: dict[str, Any],
                                            host: str) -> None:
    run = migrate_outcome["run"]
    _vars, fragments = migrate_outcome["cases"][host]
    assert run.rc != 0
    report = migrate_outcome["reports"][host]
    assert report is not None, f"no report for {host}:\n{run.text[-3000:]}"
    assert report["status"] == "failed", report
    message = report["error"]["msg"]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert report["migrated"] is None  # never reached the copy
    # every failure shows in the play's output too, under the host's name
    assert any(result["_host"] == host for result in run.failed_results()), host
    for secret in (bad_world["cluster"].password, SECRET_WRONG, READER_PASSWORD):
        assert secret not in message
    if host == "unreachable-host":
        assert report["duration_s"] is not None and 10 <= float(report["duration_s"]) < UNREACHABLE_BOUND, report


def test_bad_input_changed_no_database(migrate_outcome: dict[str, Any], bad_world: dict[str, Any]) -> None:
    run = migrate_outcome["run"]
    assert migrate_outcome["after"] == migrate_outcome["before"]
    assert migrate_outcome["names_after"] == migrate_outcome["names_before"]
    assert not MARKER.exists(), "a tenant id reached a shell"
    for secret in (bad_world["cluster"].password, SECRET_WRONG, READER_PASSWORD):
        assert secret not in run.text
        for report in (bad_world["tmp"] / "reports").rglob("*"):
            if report.is_file():
                assert secret not in report.read_text(encoding="utf-8", errors="replace"), report


def _rollback_inventory(world: dict[str, Any], path: Path) -> Path:
    cluster = world["cluster"]
    data = {"all": {"vars": {"ansible_connection": "local",
                             "ansible_python_interpreter": str(Path(__file__).resolve().parents[2] / ".venv" / "bin"
                                                               / "python"),
                             "relmigrate_backup_dir": str(world["tmp"] / "backups"),
                             "relmigrate_report_dir": str(world["tmp"] / "reports")},
                    "hosts": {"bi-main": {"yuantus_database_url": cluster.url("bi_main")}}}}
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("method,fragment", [
    ("restore", "no backup of bi-main for run no-such-run"),
    ("delete", "run 'no-such-run' is not in this database's ledger"),
])
def test_rollback_of_a_run_that_does_not_exist(bad_world: dict[str, Any], faults_env: dict[str, str],
                                               method: str, fragment: str) -> None:
    cluster = bad_world["cluster"]
    (bad_world["tmp"] / "backups").mkdir(mode=0o700, exist_ok=True)
    inventory = _rollback_inventory(bad_world, bad_world["tmp"] / f"rollback-{method}.json")
    before = database_checksums(cluster, bad_world["databases"])
    run = run_playbook(faults_env, "rollback.yml", inventory, "-e", f"relmigrate_rollback_method={method}",
                       "-e", "relmigrate_rollback_run_id=no-such-run", "-e", "relmigrate_restore_confirm=bi-main",
                       "-e", f"relmigrate_run_id=rb-{method}")
    assert run.rc != 0, run.text
    assert fragment in run.messages(), run.text[-3000:]
    assert database_checksums(cluster, bad_world["databases"]) == before
    assert cluster.password not in run.text


# -- the module-level twins of the cases a playbook cannot express ----------------------------------------------


@pytest.mark.parametrize("args,fragment", [
    ({"tenancy_mode": "db-per-org"}, "value of tenancy_mode must be one of"),
    ({"batch_size": 0}, "batch_size must be a positive number of rows, got 0"),
    ({"batch_size": -3}, "batch_size must be a positive number of rows, got -3"),
    ({"lock_wait": -1}, "lock_wait must be 0 or more seconds"),
])
def test_module_refuses_bad_options(bad_world: dict[str, Any], faults_env: dict[str, str], args: dict[str, Any],
                                    fragment: str) -> None:
    cluster = bad_world["cluster"]
    before = database_checksums(cluster, ["bi_main"])
    run = run_module(faults_env, "relationship_items", args, url=cluster.url("bi_main"))
    assert run.rc != 0
    assert fragment in run.host_result()["msg"], run.text
    assert database_checksums(cluster, ["bi_main"]) == before


def test_module_unreachable_host_is_bounded_by_connect_timeout(bad_world: dict[str, Any],
                                                               faults_env: dict[str, str]) -> None:
    url = f"postgresql+psycopg://postgres:x@127.0.0.1:{bad_world['hole'].port}/bi_main"
    started = time.monotonic()
    run = run_module(faults_env, "relationship_items_info", {"connect_timeout": 2}, url=url, timeout=120)
    elapsed = time.monotonic() - started
    assert run.rc != 0
    msg = run.host_result()["msg"]
    assert "cannot connect to postgres@127.0.0.1" in msg and "timeout" in msg, msg
    assert 2 <= elapsed < 2 + 20, elapsed
