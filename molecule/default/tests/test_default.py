"""default: db-per-tenant-org over two servers, migrated once (converge) and re-run (idempotence)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from checks import assert_backup, assert_migrated, assert_no_secret, assert_tables_unchanged

MIGRATED = ["tenant-1__org-1", "tenant-1__org-2", "tenant-2__t2-org-1"]
SKIPPED = "tenant-3__org-3"


def test_scopes_are_spread_over_both_servers(scenario, psql):
    for server in ("a", "b"):
        names = {row[0] for row in psql.rows("postgres", "SELECT datname FROM pg_database", server=server)}
        expected = {name for name in scenario.databases() if scenario.database(name)["server"] == server}
        assert expected <= names
        assert not (set(scenario.databases()) - expected) & names
    on_a = {row[0] for row in psql.rows("postgres", "SELECT datname FROM pg_database", server="a")}
    assert "yuantus_identity" in on_a


def test_every_scope_migrated(scenario, psql):
    for scope in MIGRATED:
        assert_migrated(psql, scenario, scenario.scope_database(scope))


def test_legacy_tables_never_written(scenario, fingerprint):
    for scope in MIGRATED:
        assert_tables_unchanged(fingerprint, scenario, scenario.scope_database(scope), ["meta_relationships",
                                                                                        "meta_relationship_types"])


def test_ledger_records_one_migrating_run(scenario, psql):
    first = scenario.runs("migrate")[0].name
    for scope in MIGRATED:
        database = scenario.scope_database(scope)
        rows = psql.rows(database, "SELECT run_id, status, migrated FROM relmigrate.runs WHERE migrated > 0")
        pending = scenario.database(database)["counts"]["total"] - scenario.database(database)["counts"][
            "existing_items"]
        assert rows == [[first, "completed", str(pending)]]


def test_scope_without_legacy_table_untouched(scenario, fingerprint):
    assert_tables_unchanged(fingerprint, scenario, scenario.scope_database(SKIPPED))


def test_first_run_backed_up_each_scope(scenario, controller):
    run_id = scenario.runs("migrate")[0].name
    for scope in MIGRATED:
        assert_backup(controller, str(scenario.backup_dir), run_id, scope, scenario.scope_database(scope))
    assert not (scenario.backup_dir / run_id / f"{SKIPPED}.dump").exists()


def test_rerun_needed_no_backup(scenario):
    second = scenario.runs("migrate")[1].name
    assert not list((scenario.backup_dir / second).glob("*.dump"))


def test_reports(scenario):
    first, second = scenario.runs("migrate")
    reports = scenario.reports(first)
    assert sorted(reports) == sorted([*MIGRATED, SKIPPED])
    for scope in MIGRATED:
        db = scenario.database(scenario.scope_database(scope))
        assert reports[scope]["status"] == "migrated"
        assert reports[scope]["verify"] == "passed"
        assert reports[scope]["migrated"] == db["counts"]["total"] - db["counts"]["existing_items"]
        assert reports[scope]["backup"]["taken"] and reports[scope]["backup"]["validated"]
    assert reports[SKIPPED]["status"].startswith("skipped")
    assert (first / "summary.md").is_file()
    assert "4 scope(s): 3 migrated, 1 skipped" in (first / "summary.md").read_text(encoding="utf-8")
    rerun = scenario.reports(second)
    assert {scope: rerun[scope]["status"] for scope in MIGRATED} == dict.fromkeys(MIGRATED, "unchanged")
    assert all(rerun[scope]["migrated"] == 0 for scope in MIGRATED)


def test_no_password_in_reports_or_manifests(scenario):
    assert_no_secret(scenario.report_dir, *scenario.backup_dir.rglob("*.manifest.json"))
