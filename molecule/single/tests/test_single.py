"""single: one database (DATABASE_URL), migrated once and re-run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from checks import (
    LEGACY_TABLES,
    assert_backup,
    assert_migrated,
    assert_no_secret,
    assert_tables_unchanged,
)

SCOPE = "yuantus"


def test_database_migrated(scenario, psql, fingerprint):
    assert_migrated(psql, scenario, SCOPE)
    assert_tables_unchanged(fingerprint, scenario, SCOPE, LEGACY_TABLES)


def test_report_names_single_mode(scenario):
    first, second = scenario.runs("migrate")
    report = scenario.reports(first)[SCOPE]
    assert report["tenancy"]["tenancy_mode"] == "single"
    assert not report["tenancy"].get("tenant_id")
    assert report["database"] == SCOPE and report["status"] == "migrated"
    assert scenario.reports(second)[SCOPE]["status"] == "unchanged"


def test_backup(scenario, controller):
    run_id = scenario.runs("migrate")[0].name
    assert_backup(controller, str(scenario.backup_dir), run_id, SCOPE, SCOPE)
    assert_no_secret(scenario.report_dir, *scenario.backup_dir.rglob("*.manifest.json"))
