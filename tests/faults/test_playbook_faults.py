"""Faults at the playbook level: two migrate.yml runs at once, a backup directory that fills up, damaged and
truncated backups, rollback-by-delete with rows referencing migrated items."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlib import (
    Run,
    clone_database,
    database_checksums,
    fingerprint,
    ledger_problems,
    module_child,
    playbook_argv,
    run_playbook,
    wait_for,
    write_inventory,
)
from yuantus_fixture import add_item_file, create_scope_database, seed_legacy

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def _hosts(cluster: Any, name: str, host: str = "scope") -> dict[str, dict[str, Any]]:
    return {host: {"yuantus_database_url": cluster.url(name)}}


def _db_oid(cluster: Any, name: str) -> int:
    with cluster.connect() as conn:
        return conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]


@pytest.fixture
def small_scope(pg_cluster: Any) -> Iterator[str]:
    name = f"pf_{uuid.uuid4().hex[:10]}"
    scope = create_scope_database(pg_cluster, name, "minimal")
    with scope.connect() as conn:
        seed_legacy(conn, 2000, seed=11)
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


def _start_playbook(env: dict[str, str], playbook: str, inventory: Path, *extra: str) -> subprocess.Popen[str]:
    from faultlib import ansible_env

    run_env = ansible_env(env)
    run_env["ANSIBLE_CONFIG"] = str(PLAYBOOKS / "ansible.cfg")
    return subprocess.Popen(playbook_argv(playbook, inventory, *extra), env=run_env, cwd=str(PLAYBOOKS),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_two_migrate_playbooks_on_one_scope(pg_cluster: Any, template_100k: str, faults_env: dict[str, str],
                                            clean_fingerprint: dict[str, Any], tmp_path: Path) -> None:
    """The second run starts while the first is copying: it backs up, then finds the lock taken and says so; the
    first completes; no row is written twice."""
    name = clone_database(pg_cluster, template_100k, "pf_twin")
    try:
        inventory = write_inventory(tmp_path / "inv.json", _hosts(pg_cluster, name),
                                    relmigrate_backup_dir=str(tmp_path / "backups"),
                                    relmigrate_report_dir=str(tmp_path / "reports"))
        started = time.monotonic()
        first = _start_playbook(faults_env, "migrate.yml", inventory, "-e", "relmigrate_run_id=first",
                                "-e", "migrate_batch_size=250")
        with pg_cluster.connect(name) as watcher:
            def copying() -> bool:
                if watcher.execute("SELECT to_regclass('relmigrate.runs') IS NULL").fetchone()[0]:
                    return False
                return watcher.execute("SELECT count(*) FROM relmigrate.runs WHERE run_id = 'first' "
                                       "AND status = 'running' AND batches > 0").fetchone()[0] > 0
            assert wait_for(copying, 300, 0.05), "the first run never started copying"
        # Freeze the first run's module mid-copy (it keeps its session and the lock), so that the second run
        # reaches its copy while the first is still at work, however fast or slow this machine is.
        module = module_child(first)
        assert module is not None
        os.kill(module, signal.SIGSTOP)
        try:
            second = run_playbook(faults_env, "migrate.yml", inventory, "-e", "relmigrate_run_id=second",
                                  timeout=600)
        finally:
            os.kill(module, signal.SIGCONT)
        out, err = first.communicate(timeout=600)
        first_run = Run(list(first.args), first.returncode, out, err, time.monotonic() - started)
        assert first_run.rc == 0, first_run.text[-3000:]
        if second.rc == 0:
            # the first run finished its copy before the second reached its own: nothing left, nothing doubled
            assert json.loads((tmp_path / "reports" / "second" / "scope.json").read_text())["migrated"] == 0
        else:
            report = json.loads((tmp_path / "reports" / "second" / "scope.json").read_text())
            assert report["status"] == "failed"
            assert "another migration holds the lock" in report["error"]["msg"], report
        with pg_cluster.connect(name) as conn:
            got = fingerprint(conn)
            assert got["duplicates"] == 0 and got["missing_legacy"] == 0
            for key in ("rows", "items_md5", "item_types_md5", "legacy_md5"):
                assert got[key] == clean_fingerprint[key], key
            assert ledger_problems(conn) == []
        assert second.rc != 0, "the runs did not overlap: the lock was not exercised"
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Any]:
    """Mount tmpfs file systems of a given size (we are root); unmounted in a finally."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"tmpfs-{len(mounted)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        for where in mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def _assert_untouched_by_migration(cluster: Any, name: str, before: dict[str, dict[str, str]]) -> None:
    after = database_checksums(cluster, [name])
    assert after == before, "the scope's database changed"


def test_backup_dir_too_small_fails_before_any_write(pg_cluster: Any, template_100k: str,
                                                     faults_env: dict[str, str], tmp_path: Path, tmpfs: Any) -> None:
    """A 2 MB file system: the backup role refuses up front (free space < database size x margin)."""
    name = clone_database(pg_cluster, template_100k, "pf_tiny")
    try:
        backups = tmpfs("2m")
        inventory = write_inventory(tmp_path / "inv.json", _hosts(pg_cluster, name),
                                    relmigrate_backup_dir=str(backups), relmigrate_report_dir=str(tmp_path / "r"))
        before = database_checksums(pg_cluster, [name])
        run = run_playbook(faults_env, "migrate.yml", inventory, "-e", "relmigrate_run_id=tiny")
        assert run.rc != 0
        report = json.loads((tmp_path / "r" / "tiny" / "scope.json").read_text())
        assert report["status"] == "failed" and report["migrated"] is None, report
        assert "bytes free" in report["error"]["msg"], report["error"]
        _assert_untouched_by_migration(pg_cluster, name, before)
        assert not any(path.is_file() for path in backups.rglob("*")), list(backups.rglob("*"))
    finally:
        pg_cluster.drop_database(name)


def test_backup_dir_fills_up_during_pg_dump(pg_cluster: Any, template_100k: str, faults_env: dict[str, str],
                                            tmp_path: Path, tmpfs: Any) -> None:
    """Room enough for the free-space check, then another writer fills the file system while pg_dump runs."""
    from faultlib import ProcWatch

    name = clone_database(pg_cluster, template_100k, "pf_full")
    try:
        with pg_cluster.connect(name) as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        backups = tmpfs(f"{int(size * 1.5) // 1024}k")
        filler = backups / "filler"

        def fill(_pid: int) -> None:
            # leave 16 KiB: pg_dump's archive of 100k rows is far larger
            stat = os.statvfs(backups)
            try:
                with open(filler, "wb") as handle:
                    handle.write(b"\0" * max(stat.f_bavail * stat.f_frsize - 16384, 0))
            except OSError:
                pass  # pg_dump took some of it meanwhile: the file system is full either way

        inventory = write_inventory(tmp_path / "inv.json", _hosts(pg_cluster, name),
                                    relmigrate_backup_dir=str(backups), relmigrate_report_dir=str(tmp_path / "r"))
        before = database_checksums(pg_cluster, [name])
        # only this test's pg_dump (other test sessions may dump their own databases meanwhile)
        with ProcWatch([pg_cluster.password], watch_for=f"--file={backups}/full/", on_seen=fill) as watch:
            run = run_playbook(faults_env, "migrate.yml", inventory, "-e", "relmigrate_run_id=full")
        assert watch.seen, "pg_dump never ran"  # the dump itself (its --file=), not `pg_dump --version`
        assert watch.hits == []
        assert run.rc != 0
        report = json.loads((tmp_path / "r" / "full" / "scope.json").read_text())
        assert report["status"] == "failed" and report["migrated"] is None, report
        msg = report["error"]["msg"]
        assert "pg_dump failed" in msg and "partial archive was removed" in msg, msg
        assert "No space left on device" in msg or "could not write" in msg, msg
        _assert_untouched_by_migration(pg_cluster, name, before)
        run_dir = backups / "full"
        assert not (run_dir / "scope.dump").exists(), "the partial archive is still there"
        assert not (run_dir / "scope.manifest.json").exists()
    finally:
        pg_cluster.drop_database(name)


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated"])
def test_restore_refuses_a_damaged_backup(pg_cluster: Any, small_scope: str, faults_env: dict[str, str],
                                          tmp_path: Path, damage: str) -> None:
    backups = tmp_path / "backups"
    inventory = write_inventory(tmp_path / "inv.json", _hosts(pg_cluster, small_scope),
                                relmigrate_backup_dir=str(backups), relmigrate_report_dir=str(tmp_path / "r"))
    run = run_playbook(faults_env, "migrate.yml", inventory, "-e", "relmigrate_run_id=good")
    assert run.rc == 0, run.text[-3000:]
    damaged = backups / "damaged"
    shutil.copytree(backups / "good", damaged)
    archive = damaged / "scope.dump"
    data = bytearray(archive.read_bytes())
    if damage == "flipped-byte":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 100]
    archive.write_bytes(bytes(data))
    before = database_checksums(pg_cluster, [small_scope])
    oid = _db_oid(pg_cluster, small_scope)
    restore = run_playbook(faults_env, "rollback.yml", inventory, "-e", "relmigrate_rollback_method=restore",
                           "-e", "relmigrate_rollback_run_id=damaged", "-e", "relmigrate_restore_confirm=scope",
                           "-e", f"relmigrate_run_id=restore-{damage}")
    assert restore.rc != 0
    messages = restore.messages()
    assert "refusing" in messages and "The database was not touched" in messages, messages[-3000:]
    assert _db_oid(pg_cluster, small_scope) == oid, "the database was dropped and recreated"
    assert database_checksums(pg_cluster, [small_scope]) == before


def test_rollback_delete_refuses_when_the_application_references_migrated_items(
        pg_cluster: Any, small_scope: str, faults_env: dict[str, str], tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv.json", _hosts(pg_cluster, small_scope),
                                relmigrate_backup_dir=str(tmp_path / "b"), relmigrate_report_dir=str(tmp_path / "r"),
                                relmigrate_skip_backup_reason="rollback fault test")
    run = run_playbook(faults_env, "migrate.yml", inventory, "-e", "relmigrate_run_id=m1")
    assert run.rc == 0, run.text[-3000:]
    with pg_cluster.connect(small_scope) as conn:
        ids = conn.execute("SELECT item_ids[1:2] FROM relmigrate.run_batches LIMIT 1").fetchone()[0]
        for item in ids:
            add_item_file(conn, item)
    before = database_checksums(pg_cluster, [small_scope])
    undo = run_playbook(faults_env, "rollback.yml", inventory, "-e", "relmigrate_rollback_run_id=m1",
                        "-e", "relmigrate_run_id=rb1")
    assert undo.rc != 0
    report = json.loads((tmp_path / "r" / "rb1" / "scope.json").read_text())
    assert report["status"] == "failed", report
    msg = report["error"]["msg"]
    assert "meta_item_files.item_id (2 rows)" in msg and "Nothing was deleted" in msg, msg
    assert database_checksums(pg_cluster, [small_scope]) == before
