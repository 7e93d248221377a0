"""orphans, after migrate.yml -e relmigrate_allow_orphans=true -l tenant-2: migrated, the orphans skipped."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared"))

from checks import LEGACY_TABLES, assert_backup, assert_migrated, assert_tables_unchanged, id_array

SCOPE = "tenant-2"


def test_migrated_without_orphans(scenario, psql, fingerprint):
    database = scenario.scope_database(SCOPE)
    db = scenario.database(database)
    assert_migrated(psql, scenario, database, skipped_orphans=db["counts"]["orphans"])
    orphan_ids = [i for ids in db["orphan_ids"].values() for i in ids]
    assert psql.value(database, f"SELECT count(*) FROM meta_items WHERE id = ANY({id_array(orphan_ids)})") == "0"
    assert_tables_unchanged(fingerprint, scenario, database, LEGACY_TABLES)


def test_report_counts_the_skipped_orphans(scenario, controller):
    (run,) = scenario.runs("allow-orphans")
    reports = scenario.reports(run)
    assert sorted(reports) == [SCOPE]
    db = scenario.database(scenario.scope_database(SCOPE))
    report = reports[SCOPE]
    assert report["status"] == "migrated" and report["verify"] == "passed"
    assert report["skipped_orphans"] == db["counts"]["orphans"]
    assert report["migrated"] == db["counts"]["total"] - db["counts"]["orphans"]
    assert set(report["orphan_sample"]) <= {i for ids in db["orphan_ids"].values() for i in ids}
    assert_backup(controller, str(scenario.backup_dir), run.name, SCOPE, scenario.scope_database(SCOPE))
