"""rollback, after rollback.yml (restore) of tenant-1__org-1: its database equals its pre-migration state."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared"))

from checks import assert_migrated

RESTORED = "tenant-1__org-1"
OTHER = "tenant-1__org-2"


def test_restored_database_equals_its_pre_migration_state(scenario, fingerprint):
    database = scenario.scope_database(RESTORED)
    before, now = scenario.database(database)["before"], fingerprint(database)
    assert {name: now["tables"][name] for name in before["tables"]} == before["tables"]
    # Besides: the ledger the restore keeps, recording the migration it undid (the backup predates the ledger).
    assert set(now["schemas"]) - set(before["schemas"]) <= {"relmigrate"}
    assert {name for name in now["tables"] if name not in before["tables"]} <= {
        "relmigrate.runs", "relmigrate.run_batches", "relmigrate.item_type_changes"}


def test_ledger_says_the_migration_was_undone(scenario, psql):
    (migrate,) = scenario.runs("migrate")
    database = scenario.scope_database(RESTORED)
    assert psql.rows(database, "SELECT run_id, status FROM relmigrate.runs") == [[migrate.name, "rolled_back"]]
    assert psql.value(database, "SELECT count(*) FROM relmigrate.run_batches") == "0"
    assert psql.value(database, "SELECT count(*) FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)") == \
        str(len(scenario.database(database)["existing_item_ids"]))


def test_other_scope_still_migrated(scenario, psql):
    assert_migrated(psql, scenario, scenario.scope_database(OTHER))


def test_restore_report(scenario):
    (migrate,) = scenario.runs("migrate")
    (run,) = scenario.runs("rollback-restore")
    reports = scenario.reports(run)
    assert sorted(reports) == [RESTORED]
    assert reports[RESTORED]["status"] == "restored"
    assert migrate.name in str(reports[RESTORED]["restore"])
