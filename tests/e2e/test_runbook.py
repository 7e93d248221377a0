"""The runbook end to end: playbooks/*.yml run by real ansible-playbook against real PostgreSQL databases."""

from __future__ import annotations

import json
from pathlib import Path

from e2elib import Fleet, ok, recap

ORPHANS = {"missing_type": 1, "missing_source": 2, "missing_related": 1}


def _report(fleet: Fleet, host: str) -> dict:
    (run_dir,) = fleet.reports().values()
    return json.loads((run_dir / f"{host}.json").read_text())


def test_limit_to_one_tenant_then_rerun_changes_nothing(org_fleet: Fleet) -> None:
    other = org_fleet.checksums("tenant-2__org-9")
    first = ok(org_fleet.play("migrate.yml", "-l", "tenant-1"))
    assert "Invalid characters were found in group names" not in first.stdout + first.stderr
    assert set(recap(first)) == {"tenant-1__org-1", "tenant-1__org-2"}
    for host in ("tenant-1__org-1", "tenant-1__org-2"):
        assert org_fleet.pending(host) == 0
    assert org_fleet.checksums("tenant-2__org-9") == other
    assert org_fleet.pending("tenant-2__org-9") == 200

    (run_id, run_dir), = org_fleet.reports().items()
    report = json.loads((run_dir / "tenant-1__org-2.json").read_text())
    assert report["status"] == "migrated" and report["run_id"] == run_id
    assert report["pending_before"] == 197 and report["migrated"] == 197 and report["verify"] == "passed"
    # Three legacy ids already existed as unrelated items: they count as present, and are not rewritten.
    assert report["verification"]["legacy_total"] == 200 and report["verification"]["items_present"] == 200
    assert report["backup_file"].startswith(str(org_fleet.backup_dir / run_id))
    assert Path(report["backup_file"]).exists()
    summary = (run_dir / "summary.md").read_text()
    assert "| tenant-1__org-1 |" in summary and "tenant-2" not in summary
    assert summary.splitlines()[0] in first.stdout

    second = ok(org_fleet.play("migrate.yml", "-l", "tenant-1"))
    assert all(counts["changed"] == 0 for counts in recap(second).values()), second.stdout[-5000:]
    assert all(_status == "unchanged" for _status in
               [json.loads(p.read_text())["status"] for d in org_fleet.reports().values() for p in d.glob("*.json")
                if json.loads(p.read_text())["run_id"] != run_id])


def test_check_mode_writes_nothing_and_says_what_would_happen(org_fleet: Fleet) -> None:
    before = org_fleet.all_checksums()
    proc = ok(org_fleet.play("migrate.yml", "--check", "--diff"))
    assert org_fleet.all_checksums() == before
    assert not org_fleet.backup_dir.exists() and not org_fleet.report_dir.exists()
    out = proc.stdout
    assert "200 rows would be migrated" in " ".join(out.split())
    assert "would migrate" in out and "check mode: nothing was written" in out
    assert "pending: 200" in out or "'pending': 200" in out or '"pending": 200' in out  # --diff before/after


def test_orphan_gate_fails_that_scope_only(org_fleet: Fleet) -> None:
    org_fleet.add("tenant-3__org-1", "tenant-3", "org-1", orphans=ORPHANS)
    orphaned = org_fleet.checksums("tenant-3__org-1")
    org_fleet.env["ANSIBLE_RETRY_FILES_ENABLED"] = "True"
    org_fleet.env["ANSIBLE_RETRY_FILES_SAVE_PATH"] = str(org_fleet.tmp / "retry")
    proc = org_fleet.play("migrate.yml")
    assert proc.returncode != 0
    counts = recap(proc)
    assert counts["tenant-3__org-1"]["failed"] == 1
    assert all(counts[host]["failed"] == 0 for host in counts if host != "tenant-3__org-1")
    assert org_fleet.checksums("tenant-3__org-1") == orphaned
    assert all(org_fleet.pending(host) == 0 for host in org_fleet.scopes if host != "tenant-3__org-1")
    message = " ".join(proc.stdout.split())
    assert "missing_type=1" in message and "missing_source=2" in message and "missing_related=1" in message
    failed = _report(org_fleet, "tenant-3__org-1")
    assert failed["status"] == "failed" and "dry-run gate failed" in failed["error"]["msg"]
    (run_dir,) = org_fleet.reports().values()
    summary = (run_dir / "summary.md").read_text()
    assert "Failed: tenant-3__org-1" in summary
    assert (org_fleet.tmp / "retry" / "migrate.retry").read_text().split() == ["tenant-3__org-1"]

    # Retry only the failed scope, skipping its orphans: the report names them, verification accounts for them.
    retry = ok(org_fleet.play("migrate.yml", "-l", f"@{org_fleet.tmp / 'retry' / 'migrate.retry'}",
                              relmigrate_allow_orphans=True))
    assert set(recap(retry)) == {"tenant-3__org-1"}
    assert org_fleet.pending("tenant-3__org-1") == 4
    reports = [json.loads(p.read_text()) for d in org_fleet.reports().values() for p in d.glob("tenant-3*.json")]
    done = next(r for r in reports if r["status"] == "migrated")
    assert done["skipped_orphans"] == 4 and done["verify"] == "passed" and done["migrated"] == 196


def test_db_per_tenant_mode(tenant_fleet: Fleet) -> None:
    other = tenant_fleet.checksums("tenant-2.db")
    ok(tenant_fleet.play("migrate.yml", "-l", "tenant-1"))
    assert tenant_fleet.pending("tenant-1.db") == 0
    assert tenant_fleet.checksums("tenant-2.db") == other
    ok(tenant_fleet.play("migrate.yml"))
    assert tenant_fleet.pending("tenant-2.db") == 0
    ok(tenant_fleet.play("verify.yml"))


def test_single_mode_from_environment_without_backup(single_fleet: Fleet) -> None:
    proc = ok(single_fleet.play("migrate.yml", relmigrate_skip_backup_reason="test database, thrown away"))
    assert single_fleet.pending("yuantus") == 0
    report = _report(single_fleet, "yuantus")
    assert report["skip_backup_reason"] == "test database, thrown away"
    assert report["backup_file"] is None and report["tenancy"]["tenancy_mode"] == "single"
    assert "test database, thrown away" in proc.stdout
    assert not single_fleet.backup_dir.exists()


def test_migrate_refuses_without_backup(single_fleet: Fleet) -> None:
    proc = single_fleet.play("migrate.yml", "--skip-tags", "backup")
    assert proc.returncode != 0
    assert "no validated backup taken by run" in " ".join(proc.stdout.split())
    assert single_fleet.pending("yuantus") == 150


def test_verify_fails_on_a_changed_row(single_fleet: Fleet) -> None:
    ok(single_fleet.play("migrate.yml", relmigrate_skip_backup_reason="test"))
    first = single_fleet.query("yuantus", "SELECT min(id) FROM meta_relationships")
    single_fleet.query("yuantus", "UPDATE meta_items SET state = 'Tampered' WHERE id = %s RETURNING id", (first,))
    proc = single_fleet.play("verify.yml")
    assert proc.returncode != 0
    assert "mismatched=1" in " ".join(proc.stdout.split())


def test_delete_rollback_removes_only_ledger_rows(org_fleet: Fleet) -> None:
    host = "tenant-1__org-2"  # has legacy ids that already existed as unrelated items
    before = org_fleet.checksums(host)
    ok(org_fleet.play("migrate.yml", "-l", host))
    (run_id,) = org_fleet.reports()
    assert org_fleet.pending(host) == 0

    check = ok(org_fleet.play("rollback.yml", "-l", host, "--check", relmigrate_rollback_run_id=run_id))
    assert "would delete 197 rows" in check.stdout
    assert org_fleet.pending(host) == 0

    ok(org_fleet.play("rollback.yml", "-l", host, relmigrate_rollback_run_id=run_id))
    after = org_fleet.checksums(host)
    for table in ("meta_items", "meta_relationships", "meta_relationship_types"):
        assert after[table] == before[table], table
    assert org_fleet.query(host, "SELECT count(*) FROM meta_items WHERE properties ? 'preexisting'") == 3
    assert org_fleet.query(host, "SELECT status FROM relmigrate.runs WHERE run_id = %s", (run_id,)) == "rolled_back"
    again = ok(org_fleet.play("rollback.yml", "-l", host, relmigrate_rollback_run_id=run_id))
    assert all(counts["changed"] == 0 for counts in recap(again).values())


def test_secrets_never_shown(org_fleet: Fleet, e2e_role: tuple[str, str]) -> None:
    password = e2e_role[1]
    org_fleet.add("tenant-3__org-1", "tenant-3", "org-1", orphans=ORPHANS)
    runs = [org_fleet.play("migrate.yml", "-vvv"), org_fleet.play("migrate.yml", "-vvv", "--check", "--diff"),
            org_fleet.play("rollback.yml", "-vvv", "-l", "tenant-1")]
    assert runs[0].returncode != 0  # the orphan scope fails: its error path is covered too
    assert runs[2].returncode == 0, runs[2].stdout[-4000:]
    for proc in runs:
        assert password not in proc.stdout and password not in proc.stderr
    for path in [*org_fleet.report_dir.rglob("*"), *org_fleet.backup_dir.rglob("*.json")]:
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
