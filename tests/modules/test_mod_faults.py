"""Faults: a killed run, concurrent runs, locks held by others, unreachable databases, missing privileges."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from pgsandbox import Cluster, free_port
from psycopg import sql
from relmig_support import (
    ADVISORY_LOCK_KEY,
    INFO_MODULE,
    MODULE,
    Ansible,
    block_item,
    checksums,
    failed,
    ledger,
    ledger_batches,
    mapped_snapshot,
    ok,
    scalar,
    wait_for,
    waiting_on_lock,
)
from yuantus_fixture import ScopeDatabase, create_scope_database, seed_legacy

ROWS = 240


@pytest.fixture
def clean_db(pg_cluster: Cluster) -> Iterator[ScopeDatabase]:
    """A second scope database, for a clean reference run."""
    db = create_scope_database(pg_cluster, f"t_clean_{uuid.uuid4().hex[:10]}", "minimal")
    try:
        yield db
    finally:
        db.drop()


def _sessions(conn: psycopg.Connection, database: str) -> int:
    return scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                  (database, "yuantus.relmigrate"))


def _holds_lock(conn: psycopg.Connection, database: str) -> bool:
    return scalar(conn, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s", (database,)) > 0


def test_killed_run_resumes_without_duplicates(scope_db: ScopeDatabase, clean_db: ScopeDatabase,
                                               ansible: Ansible) -> None:
    url = scope_db.url
    with scope_db.connect() as conn, clean_db.connect() as clean, scope_db.connect(autocommit=False) as blocker:
        seed = seed_legacy(conn, ROWS, seed=7, existing_items=4)
        seed_legacy(clean, ROWS, seed=7, existing_items=4)
        legacy = [row[0] for row in conn.execute("SELECT id FROM meta_relationships ORDER BY id")]
        # an uncommitted row with the id of batch 3's last row: batches 1 and 2 commit, batch 3 waits on it
        block_item(blocker, legacy[59])
        assert legacy[59] not in seed["existing_item_ids"]
        proc = ansible.start(MODULE, {"database_url": url, "batch_size": 20, "run_id": "killed-run",
                                      "lock_timeout": 0})
        try:
            wait_for(lambda: ledger_batches(conn, "killed-run") >= 2 and waiting_on_lock(conn, scope_db.name),
                     what="two committed batches and the third one waiting")
        finally:
            Ansible.kill(proc)
        # a backend waiting on a lock notices its dead client only afterwards: when it has to answer
        blocker.rollback()
        wait_for(lambda: _sessions(conn, scope_db.name) == 0, what="the killed session to end")

        [run] = ledger(conn)
        assert run["status"] == "running" and run["run_id"] == "killed-run" and run["batches"] == 2
        written = scalar(conn, "SELECT count(*) FROM (SELECT unnest(item_ids) FROM relmigrate.run_batches) s")
        migrated_now = scalar(conn, "SELECT count(*) FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)")
        assert 30 < written <= 40 and migrated_now == written + 4    # whole batches only, with their ledger rows
        assert run["migrated"] == written

        result = ok(ansible.migrate(url, batch_size=20))
        assert result["migrated"] == ROWS - 4 - written and result["pending_after"] == 0
        runs = {r["run_id"]: r for r in ledger(conn)}
        assert runs["killed-run"]["status"] == "interrupted" and runs[result["run_id"]]["status"] == "completed"
        ids = [row[0] for row in conn.execute("SELECT unnest(item_ids) FROM relmigrate.run_batches")]
        assert len(ids) == len(set(ids)) == ROWS - 4

        ok(ansible.migrate(clean_db.url, batch_size=1000))
        assert mapped_snapshot(conn) == mapped_snapshot(clean)
        verified = ok(ansible.info(url, check_content=True))["verification"]
        assert verified["mismatched"] == 0 and verified["written_by_ledger"] == ROWS - 4


def test_concurrent_runs_no_duplicates_and_a_clear_lock_message(scope_db: ScopeDatabase, ansible: Ansible) -> None:
    url = scope_db.url
    with scope_db.connect() as conn, scope_db.connect(autocommit=False) as blocker:
        seed_legacy(conn, ROWS, seed=8)
        legacy = [row[0] for row in conn.execute("SELECT id FROM meta_relationships ORDER BY id")]
        block_item(blocker, legacy[100])        # keeps the first run busy (holding the lock) until released
        procs = [ansible.start(MODULE, {"database_url": url, "batch_size": 40, "run_id": "first", "lock_timeout": 0})]
        try:
            wait_for(lambda: waiting_on_lock(conn, scope_db.name), what="the first run to be copying")
            assert _holds_lock(conn, scope_db.name)
            # lock_wait=0: the second run fails at once, clearly, having written nothing
            second = ansible.migrate(url, batch_size=40, run_id="second")
            # lock_wait>0: a third run waits for the first one, then finds nothing left to do
            procs.append(ansible.start(MODULE, {"database_url": url, "lock_wait": 120, "run_id": "third"}))
            wait_for(lambda: _sessions(conn, scope_db.name) == 2, what="the third run to connect")
            blocker.rollback()
            one, three = (ansible.finish(proc) for proc in procs)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    Ansible.kill(proc)
        refused = failed(second)
        assert "another migration holds the lock on this database" in refused["msg"]
        assert "lock_wait" in refused["msg"] and refused["database"] == scope_db.name
        assert ok(one)["migrated"] == ROWS
        assert ok(three)["changed"] is False and three.result["migrated"] == 0
        assert [r["run_id"] for r in ledger(conn)] == ["first"]
        ids = [row[0] for row in conn.execute("SELECT unnest(item_ids) FROM relmigrate.run_batches")]
        assert len(ids) == len(set(ids)) == ROWS
        assert scalar(conn, "SELECT count(*) FROM meta_items WHERE id = ANY(%s)", (legacy,)) == ROWS


def test_lock_wait_waits_for_the_lock(scope_db: ScopeDatabase, ansible: Ansible) -> None:
    with scope_db.connect() as conn, scope_db.connect() as holder:
        seed_legacy(conn, 50, seed=9)
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        proc = ansible.start(MODULE, {"database_url": scope_db.url, "lock_wait": 60})
        try:
            wait_for(lambda: _sessions(conn, scope_db.name) >= 1, what="the module to connect")
            time.sleep(1.0)
            assert proc.poll() is None, "the module did not wait for the lock"
            assert scalar(conn, "SELECT count(*) FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)") == 0
            holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            result = ok(ansible.finish(proc))
        finally:
            if proc.poll() is None:
                Ansible.kill(proc)
        assert result["migrated"] == 50


def test_application_lock_on_meta_items(scope_db: ScopeDatabase, ansible: Ansible) -> None:
    url = scope_db.url
    with scope_db.connect() as conn, scope_db.connect(autocommit=False) as app:
        seed_legacy(conn, 60, seed=10)
        sums = checksums(conn)
        app.execute("LOCK TABLE meta_items IN SHARE MODE")     # an application transaction holds it
        try:
            run = ansible.migrate(url, lock_timeout=1)
            result = failed(run)
            assert "lock timeout" in result["msg"], result["msg"]
            assert result["database"] == scope_db.name
            assert run.seconds < 30
            assert checksums(conn) == sums                     # nothing half-written, ItemTypes included
            assert scalar(conn, "SELECT to_regnamespace('relmigrate') IS NULL")
        finally:
            app.rollback()
        assert ok(ansible.migrate(url, lock_timeout=1))["migrated"] == 60


PASSWORD = "Relmig-Sekret#Pw/91?x"


@pytest.mark.parametrize("case", ["wrong_password", "closed_port", "no_database"])
def test_connection_errors_never_show_the_password(pg_cluster: Cluster, ansible: Ansible, role_name: str,
                                                   case: str) -> None:
    pg_cluster.create_role(role_name, PASSWORD)
    port, database, password = pg_cluster.port, "postgres", PASSWORD
    if case == "wrong_password":
        password = PASSWORD + "-wrong"
    elif case == "closed_port":
        port = free_port()
    else:
        database = f"no_such_db_{uuid.uuid4().hex[:6]}"
    url = f"postgresql+psycopg://{role_name}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"
    expected = {"wrong_password": "password authentication failed",
                "closed_port": "Connection refused",
                "no_database": f'database "{database}" does not exist'}[case]
    for module in (MODULE, INFO_MODULE):
        run = ansible.run(module, {"database_url": url, "connect_timeout": 2})
        result = failed(run)
        assert result["msg"].startswith(f"cannot connect to {role_name}@127.0.0.1:{port}/{database}: ")
        assert expected in result["msg"], result["msg"]
        for secret in (password, quote(password, safe=""), PASSWORD, "Sekret"):
            assert secret not in run.output, f"{secret!r} leaked"
        assert run.seconds < 60


def test_role_without_insert_is_detected_before_any_write(scope_db: ScopeDatabase, ansible: Ansible,
                                                          role_name: str) -> None:
    cluster = scope_db.cluster
    cluster.create_role(role_name, PASSWORD)
    with scope_db.connect() as conn:
        seed_legacy(conn, 40, seed=12)
        role = sql.Identifier(role_name)
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(scope_db.name), role))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
        sums = checksums(conn)
        url = cluster.url(scope_db.name, user=role_name, password=PASSWORD)

        dry_run = ok(ansible.info(url))                             # the dry run already says what is missing
        assert dry_run["ready"] is False and dry_run["gate_failures"] == ["privileges"]
        assert dry_run["missing_privileges"] == ["INSERT on public.meta_items", "INSERT on public.meta_item_types",
                                                 "CREATE on the database (for the relmigrate ledger schema)"]
        run = ansible.migrate(url)
        result = failed(run)
        assert result["msg"] == ("the database role lacks INSERT on public.meta_items, INSERT on "
                                 "public.meta_item_types, CREATE on the database (for the relmigrate ledger "
                                 "schema); nothing was written")
        assert checksums(conn) == sums and scalar(conn, "SELECT to_regnamespace('relmigrate') IS NULL")
        assert PASSWORD not in run.output

        # with the ledger in place and INSERT on meta_item_types, only meta_items is missing
        conn.execute("CREATE SCHEMA relmigrate")
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA relmigrate TO {}").format(role))
        conn.execute(sql.SQL("GRANT INSERT ON meta_item_types TO {}").format(role))
        result = failed(ansible.migrate(url))
        assert result["msg"] == "the database role lacks INSERT on public.meta_items; nothing was written"
        assert checksums(conn) == sums
