"""orphans, after migrate.yml: tenant-2's gate failed, its database untouched; the other tenants migrated."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared"))

from checks import LEGACY_TABLES, assert_migrated, assert_tables_unchanged

GATED = "tenant-2"
MIGRATED = ["tenant-1", "tenant-3"]


def test_gated_scope_unchanged_byte_for_byte(scenario, fingerprint):
    assert_tables_unchanged(fingerprint, scenario, scenario.scope_database(GATED))


def test_gated_scope_has_no_ledger(scenario, psql):
    database = scenario.scope_database(GATED)
    assert psql.value(database, "SELECT to_regnamespace('relmigrate') IS NULL") == "t"


def test_other_scopes_migrated(scenario, psql, fingerprint):
    for scope in MIGRATED:
        assert_migrated(psql, scenario, scenario.scope_database(scope))
        assert_tables_unchanged(fingerprint, scenario, scenario.scope_database(scope), LEGACY_TABLES)


def test_report_names_the_gated_scope(scenario):
    (run,) = scenario.runs("migrate")
    reports = scenario.reports(run)
    counts = scenario.database(scenario.scope_database(GATED))["counts"]
    assert reports[GATED]["status"] == "failed"
    assert reports[GATED]["migrated"] is None
    failures = " ".join(reports[GATED]["gate_failures"])
    for kind in ("missing_type", "missing_source", "missing_related"):
        assert kind in failures, failures
    assert counts["orphans"] == 4
    assert not (scenario.backup_dir / run.name / f"{GATED}.dump").exists()
    for scope in MIGRATED:
        assert reports[scope]["status"] == "migrated"
    assert GATED in (run / "summary.md").read_text(encoding="utf-8")
