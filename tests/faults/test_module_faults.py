"""Faults at the module level (run through ``ansible localhost -m``): PostgreSQL stopped mid-copy, two runs at
once, an application lock on meta_items, rollback-by-delete with rows referencing migrated items."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from faultlib import (
    clone_database,
    database_checksums,
    fingerprint,
    finish,
    ledger_problems,
    run_module,
    seed_fault_database,
    start_module,
    wait_for,
)
from pgsandbox import Cluster
from yuantus_fixture import add_item_file

PARITY_KEYS = ("rows", "items_md5", "item_types_md5", "legacy_md5")


def _batches(conn: psycopg.Connection, run_id: str) -> int:
    if conn.execute("SELECT to_regclass('relmigrate.runs') IS NULL").fetchone()[0]:
        return 0
    row = conn.execute("SELECT batches FROM relmigrate.runs WHERE run_id = %s", (run_id,)).fetchone()
    return row[0] if row else 0


def _assert_parity(conn: psycopg.Connection, clean: dict[str, Any]) -> None:
    got = fingerprint(conn)
    assert got["duplicates"] == 0 and got["missing_legacy"] == 0, got
    for key in PARITY_KEYS:
        assert got[key] == clean[key], key
    assert ledger_problems(conn) == []


def test_postgres_fast_shutdown_mid_copy_then_rerun(faults_env: dict[str, str],
                                                    clean_fingerprint: dict[str, Any]) -> None:
    """A dedicated cluster (the session's one stays up): stop it (fast) in the middle of the copy."""
    cluster = Cluster.start()
    try:
        seed_fault_database(cluster, "scope")
        url = cluster.url("scope")
        # An uncommitted application row with a legacy id of batch 13 holds the copy there, mid-run, however fast
        # the machine is: the shutdown always lands in the middle of the copy (and rolls that row back).
        blocker = cluster.connect("scope", autocommit=False)
        with cluster.connect("scope") as watcher:
            held = watcher.execute("SELECT id FROM meta_relationships ORDER BY id OFFSET 25000 LIMIT 1").fetchone()[0]
            blocker.execute("INSERT INTO meta_items (id, item_type_id, config_id) VALUES (%s, 'Part', %s)",
                            (held, held))
            started = time.monotonic()
            proc = start_module(faults_env, "relationship_items", {"batch_size": 2000, "run_id": "stopped"}, url=url)
            assert wait_for(lambda: _batches(watcher, "stopped") >= 10 and watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'yuantus.relmigrate' "
                "AND wait_event_type = 'Lock'").fetchone()[0] == 1, 120, 0.01), "copy never reached the held row"
        cluster.shutdown("fast")
        blocker.close()
        stopped = finish(proc, started, 120)
        assert stopped.rc != 0, stopped.text
        msg = stopped.host_result().get("msg", "")
        # clear: names the database and says the server went away; no password
        assert "scope" in msg and ("terminat" in msg or "closed" in msg or "connection" in msg), msg
        assert cluster.password not in stopped.text
        cluster.start_server()
        rerun = run_module(faults_env, "relationship_items", {"batch_size": 5000, "run_id": "after-restart"}, url=url)
        assert rerun.rc == 0, rerun.text
        with cluster.connect("scope") as conn:
            _assert_parity(conn, clean_fingerprint)
            killed = conn.execute("SELECT status, migrated FROM relmigrate.runs WHERE run_id = 'stopped'").fetchone()
            # the stopped run could not mark itself failed (the server was gone): the next run marked it
            assert killed[0] in ("interrupted", "failed"), killed
            assert killed[1] + rerun.host_result()["migrated"] == clean_fingerprint["migrated"]
    finally:
        cluster.stop()


def test_two_runs_at_once_one_reports_the_lock(pg_cluster: Any, template_100k: str, faults_env: dict[str, str],
                                               clean_fingerprint: dict[str, Any]) -> None:
    name = clone_database(pg_cluster, template_100k, "f_twin")
    url = pg_cluster.url(name)
    try:
        started = time.monotonic()
        procs = [start_module(faults_env, "relationship_items", {"batch_size": 2000, "run_id": f"twin-{n}"}, url=url)
                 for n in range(2)]
        runs = [finish(proc, started, 300) for proc in procs]
        ok = [run for run in runs if run.rc == 0]
        failed = [run for run in runs if run.rc != 0]
        assert len(ok) == 1 and len(failed) == 1, [run.text for run in runs]
        msg = failed[0].host_result()["msg"]
        assert "another migration holds the lock" in msg and "lock_wait" in msg, msg
        with pg_cluster.connect(name) as conn:
            _assert_parity(conn, clean_fingerprint)
            # the refused run wrote nothing, not even a ledger row
            assert conn.execute("SELECT count(*) FROM relmigrate.runs").fetchone()[0] == 1
    finally:
        pg_cluster.drop_database(name)


@pytest.mark.parametrize("lock_mode", ["ACCESS EXCLUSIVE", "SHARE"])
def test_application_lock_on_meta_items_honours_lock_timeout(pg_cluster: Any, template_100k: str,
                                                             faults_env: dict[str, str],
                                                             clean_fingerprint: dict[str, Any],
                                                             lock_mode: str) -> None:
    """ACCESS EXCLUSIVE blocks even the preflight's reads; SHARE (e.g. CREATE INDEX) blocks only the writes: the
    run takes the copy's lock before its first write, so either way it fails within lock_timeout having written
    nothing."""
    name = clone_database(pg_cluster, template_100k, "f_lock")
    url = pg_cluster.url(name)
    lock_timeout = 3
    try:
        before = database_checksums(pg_cluster, [name])
        app = pg_cluster.connect(name, autocommit=False, application_name="yuantus-app")
        try:
            app.execute(f"LOCK TABLE public.meta_items IN {lock_mode} MODE")
            run = run_module(faults_env, "relationship_items", {"lock_timeout": lock_timeout, "run_id": "locked"},
                             url=url, timeout=120)
        finally:
            app.rollback()
            app.close()
        assert run.rc != 0, run.text
        msg = run.host_result()["msg"]
        assert "lock timeout" in msg and name in msg, msg
        # bounded: lock_timeout plus ansible's own start-up, nowhere near a hang
        assert lock_timeout <= run.elapsed < lock_timeout + 60, run.elapsed
        # nothing at all was written, not even the ledger or the ItemTypes
        assert database_checksums(pg_cluster, [name]) == before
        rerun = run_module(faults_env, "relationship_items", {"lock_timeout": lock_timeout, "run_id": "unlocked"},
                           url=url)
        assert rerun.rc == 0, rerun.text
        with pg_cluster.connect(name) as conn:
            _assert_parity(conn, clean_fingerprint)
    finally:
        pg_cluster.drop_database(name)


def test_rollback_by_delete_refuses_when_rows_reference_migrated_items(pg_cluster: Any, scope_db: Any,
                                                                       faults_env: dict[str, str]) -> None:
    from yuantus_fixture import seed_legacy

    with scope_db.connect() as conn:
        seed_legacy(conn, 2000, seed=7)
    run = run_module(faults_env, "relationship_items", {"run_id": "to-undo"}, url=scope_db.url)
    assert run.rc == 0, run.text
    with scope_db.connect() as conn:
        migrated = conn.execute("SELECT item_ids[1] FROM relmigrate.run_batches ORDER BY batch_no LIMIT 1"
                                ).fetchone()[0]
        add_item_file(conn, migrated, f"file-{uuid.uuid4().hex[:6]}")
    before = database_checksums(pg_cluster, [scope_db.name])
    undo = run_module(faults_env, "relationship_items", {"state": "absent"}, url=scope_db.url)
    assert undo.rc != 0, undo.text
    result = undo.host_result()
    assert "meta_item_files.item_id (1 rows)" in result["msg"] and "Nothing was deleted" in result["msg"], result
    assert database_checksums(pg_cluster, [scope_db.name]) == before


def test_lock_wait_lets_the_second_run_finish_after_the_first(pg_cluster: Any, scope_db: Any,
                                                              faults_env: dict[str, str]) -> None:
    """With lock_wait the second of two concurrent runs waits, then finds nothing left to do."""
    from yuantus_fixture import seed_legacy

    with scope_db.connect() as conn:
        seed_legacy(conn, 20000, seed=8)
    holder = psycopg.connect(scope_db.dsn, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(7170120240531)")
        release = threading.Timer(4.0, holder.close)
        release.start()
        run = run_module(faults_env, "relationship_items", {"lock_wait": 60, "run_id": "waited"}, url=scope_db.url)
        release.join()
    finally:
        holder.close()
    assert run.rc == 0, run.text
    assert run.host_result()["migrated"] == 20000, run.host_result()
