"""rollback, after migrating again and rollback.yml (delete): only the rows the ledger recorded are gone."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared"))

from checks import LEGACY_TABLES, assert_tables_unchanged

SCOPES = ["tenant-1__org-1", "tenant-1__org-2"]


def test_meta_items_back_to_pre_migration(scenario, fingerprint):
    for scope in SCOPES:
        assert_tables_unchanged(fingerprint, scenario, scenario.scope_database(scope), ["meta_items", *LEGACY_TABLES])


def test_preexisting_items_sharing_legacy_ids_kept(scenario, psql):
    database = scenario.scope_database("tenant-1__org-1")
    ids = scenario.database(database)["existing_item_ids"]
    assert len(ids) == 3
    kept = psql.value(database, "SELECT count(*) FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)")
    assert int(kept) == len(ids)


def test_ledger_runs_rolled_back(scenario, psql):
    for scope in SCOPES:
        database = scenario.scope_database(scope)
        statuses = {row[0] for row in psql.rows(database, "SELECT DISTINCT status FROM relmigrate.runs WHERE migrated > 0")}
        assert statuses == {"rolled_back"}


def test_delete_report(scenario):
    (run,) = scenario.runs("rollback-delete")
    reports = scenario.reports(run)
    assert sorted(reports) == SCOPES
    for scope in SCOPES:
        db = scenario.database(scenario.scope_database(scope))
        expected = db["counts"]["total"] - db["counts"]["existing_items"]
        assert reports[scope]["status"] == f"rolled back: deleted {expected} rows"
        assert reports[scope]["rollback"]["deleted"] == expected
