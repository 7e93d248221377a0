"""remote: the scope was migrated from inside its database server's container (docker connection)."""

from __future__ import annotations

import sys
from pathlib import Path

import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from checks import assert_backup, assert_migrated, assert_no_secret

SCOPE = "tenant-1__org-1"
BACKUP_DIR = "/var/backups/relmigrate"


def container(scenario):
    return testinfra.get_host(f"docker://{scenario.container('a')}")


def test_managed_host_has_no_sqlalchemy(scenario):
    host = container(scenario)
    assert host.run("python3 -c 'import psycopg'").rc == 0
    assert host.run("python3 -c 'import sqlalchemy'").rc != 0


def test_scope_migrated(scenario, psql):
    assert_migrated(psql, scenario, scenario.scope_database(SCOPE))


def test_backup_written_inside_the_container(scenario, controller):
    run_id = scenario.runs("migrate")[0].name
    manifest = assert_backup(container(scenario), BACKUP_DIR, run_id, SCOPE, scenario.scope_database(SCOPE))
    assert manifest["scope"]["host"] == "127.0.0.1"
    assert not controller.file(BACKUP_DIR).exists


def test_reports_on_the_controller(scenario):
    first, second = scenario.runs("migrate")
    report = scenario.reports(first)[SCOPE]
    assert report["status"] == "migrated" and report["verify"] == "passed"
    assert report["migrated"] == scenario.database(scenario.scope_database(SCOPE))["counts"]["total"]
    assert report["backup_file"].startswith(f"{BACKUP_DIR}/{first.name}/")
    assert scenario.reports(second)[SCOPE]["status"] == "unchanged"
    assert_no_secret(scenario.report_dir)
