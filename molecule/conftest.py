"""Fixtures shared by the Molecule scenarios' testinfra verifiers (molecule/<scenario>/tests/).

* ``scenario``: the scenario's ``vars/fixture.yml`` and the state prepare recorded (ports, seeded counts, fingerprints of
  every database before any migration), plus the runs of the collection's playbooks (report directories).
* ``psql``: SQL through ``psql`` inside a PostgreSQL container (``docker exec`` via testinfra's docker backend).
* ``fingerprint``: the current fingerprint of a database, to compare with the one taken before the migration.
* ``controller``: the local host (backups and reports of controller-side scopes live here).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "shared"))

import fixture as molecule_fixture


@dataclass
class Scenario:
    """What a verifier knows about its scenario."""

    directory: Path
    state_dir: Path
    spec: dict[str, Any]
    state: dict[str, Any] = field(repr=False)

    @property
    def backup_dir(self) -> Path:
        """``relmigrate_backup_dir`` of the scenario's inventory (controller-side scopes)."""
        return self.state_dir / "backups"

    @property
    def report_dir(self) -> Path:
        """``relmigrate_report_dir`` of the scenario's inventory."""
        return self.state_dir / "reports"

    def database(self, name: str) -> dict[str, Any]:
        """The prepare state of one database (server, port, seeded counts, ``before`` fingerprint)."""
        return self.state["databases"][name]

    def databases(self, legacy_table: bool | None = None) -> list[str]:
        """Names of the scenario's scope databases (optionally only those with or without a legacy table)."""
        return [name for name, db in self.state["databases"].items()
                if legacy_table is None or db["legacy_table"] == legacy_table]

    def scope_database(self, scope: str) -> str:
        """The database of a scope (inventory host name)."""
        return next(name for name, db in self.state["databases"].items() if db["scope"] == scope)

    def runs(self, label: str) -> list[Path]:
        """Report directories of the playbook runs labelled ``label`` (run_playbook.yml), oldest first."""
        return sorted(path for path in self.report_dir.glob(f"{label}-*") if path.is_dir())

    def reports(self, run_dir: Path) -> dict[str, dict[str, Any]]:
        """The per-scope JSON reports of one run, by scope."""
        return {path.stem: json.loads(path.read_text(encoding="utf-8"))
                for path in sorted(run_dir.glob("*.json"))}

    def container(self, server: str) -> str:
        """The container name of a server of the spec."""
        return str(self.spec["servers"][server]["container"])


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    """The running scenario (from Molecule's environment)."""
    directory = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    state_dir = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "relmigrate"
    spec = yaml.safe_load((directory / "vars" / "fixture.yml").read_text(encoding="utf-8"))
    state = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
    return Scenario(directory=directory, state_dir=state_dir, spec=spec, state=state)


@pytest.fixture(scope="session")
def controller() -> Any:
    """testinfra host for the controller."""
    return testinfra.get_host("local://")


class Psql:
    """Runs SQL with psql inside a scenario's PostgreSQL container, as the postgres OS user (peer auth)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._hosts: dict[str, Any] = {}

    def host(self, server: str) -> Any:
        """testinfra host (docker backend) of a server's container."""
        if server not in self._hosts:
            self._hosts[server] = testinfra.get_host(f"docker://{self.scenario.container(server)}")
        return self._hosts[server]

    def rows(self, database: str, query: str, server: str | None = None) -> list[list[str]]:
        """Rows of ``query`` in ``database`` (its server from the state unless given), fields as text."""
        db = self.scenario.state["databases"].get(database, {})
        server = server or db["server"]
        port = molecule_fixture.server_port(self.scenario.spec, server)
        result = self.host(server).run(
            "setpriv --reuid=postgres --regid=postgres --init-groups "
            "psql -X -A -t -q -v ON_ERROR_STOP=1 -F '|' -h /run/postgresql -p %s -d %s -c %s",
            str(port), database, query)
        assert result.rc == 0, f"psql in {self.scenario.container(server)} failed: {result.stderr}"
        return [line.split("|") for line in result.stdout.splitlines() if line]

    def value(self, database: str, query: str, server: str | None = None) -> str:
        """The single value ``query`` returns."""
        rows = self.rows(database, query, server)
        assert len(rows) == 1 and len(rows[0]) == 1, rows
        return rows[0][0]


@pytest.fixture(scope="session")
def psql(scenario: Scenario) -> Psql:
    """SQL through psql in the containers."""
    return Psql(scenario)


@pytest.fixture(scope="session")
def fingerprint(scenario: Scenario) -> Any:
    """``fingerprint(database)``: schemas and table fingerprints now (compare with the state's ``before``)."""

    def current(database: str) -> dict[str, Any]:
        db = scenario.database(database)
        with molecule_fixture.connect(db["port"], database) as conn:
            return molecule_fixture.fingerprint(conn)

    return current
