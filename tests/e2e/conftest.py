"""Fleets of scope databases for the end-to-end tests: real PostgreSQL (tests/conftest.py's cluster), a generated
inventory per test, and real ``ansible-playbook`` runs of ``playbooks/*.yml`` with the bundled ansible.cfg."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from yuantus_fixture import ScopeDatabase, create_scope_database, seed_legacy, table_checksums

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
PASSWORD_ENV = "RELMIGRATE_E2E_DB_PASSWORD"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


@pytest.fixture(scope="session")
def e2e_role(pg_cluster: Any) -> tuple[str, str]:
    """A login role with a distinctive password that every e2e scope URL uses (the secret the tests look for)."""
    name = "relmig_e2e"
    password = f"Pw-{secrets.token_hex(12)}-e2eSecret"
    pg_cluster.create_role(name, password, superuser=True)
    return name, password


@dataclass
class Fleet:
    """Scope databases of one tenancy mode, an inventory for them, and helpers to run the playbooks."""

    cluster: Any
    mode: str
    tmp: Path
    env: dict[str, str]
    role: tuple[str, str]
    prefix: str = field(default_factory=lambda: f"e2e{uuid.uuid4().hex[:8]}")
    scopes: dict[str, ScopeDatabase] = field(default_factory=dict)
    host_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def backup_dir(self) -> Path:
        return self.tmp / "backups"

    @property
    def report_dir(self) -> Path:
        return self.tmp / "reports"

    @property
    def inventory(self) -> Path:
        return self.tmp / "inventory" / "hosts.yml"

    def url(self, database: str) -> str:
        user, password = self.role
        return f"postgresql+psycopg://{user}:{password}@{self.cluster.host}:{self.cluster.port}/{database}"

    def template(self) -> str:
        """The URL template, with the password read from the environment by the inventory (never written)."""
        user = self.role[0]
        name = {"db-per-tenant-org": f"{self.prefix}__{{tenant_id}}__{{org_id}}",
                "db-per-tenant": f"{self.prefix}__{{tenant_id}}"}[self.mode]
        return (f"postgresql+psycopg://{user}:{{{{ lookup('ansible.builtin.env', '{PASSWORD_ENV}') }}}}"
                f"@{self.cluster.host}:{self.cluster.port}/{name}")

    def add(self, host: str, tenant: str | None = None, org: str | None = None, rows: int = 200,
            **seed: Any) -> ScopeDatabase:
        """Create and seed one scope database and put its host into the inventory (grouped by tenant)."""
        if self.mode == "db-per-tenant-org":
            database = f"{self.prefix}__{tenant}__{org}"
        elif self.mode == "db-per-tenant":
            database = f"{self.prefix}__{tenant}"
        else:
            database = f"{self.prefix}__single"
        db = create_scope_database(self.cluster, database, "minimal")
        with db.connect() as conn:
            seed_legacy(conn, rows, seed=len(self.scopes), **seed)
        self.scopes[host] = db
        variables = {}
        if tenant:
            variables["yuantus_tenant_id"] = tenant
        if org:
            variables["yuantus_org_id"] = org
        self.host_vars[host] = variables
        self.groups.setdefault(tenant or "ungrouped", []).append(host)
        self.write_inventory()
        return db

    def write_inventory(self) -> None:
        group_vars = {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "relmigrate_backup_dir": str(self.backup_dir),
            "relmigrate_report_dir": str(self.report_dir),
        }
        if self.mode != "single":
            group_vars.update(yuantus_tenancy_mode=self.mode, yuantus_database_url_template=self.template())
        children = {group: {"hosts": {host: self.host_vars[host] for host in hosts}}
                    for group, hosts in self.groups.items()}
        self.inventory.parent.mkdir(parents=True, exist_ok=True)
        self.inventory.write_text(yaml.safe_dump({"all": {"vars": group_vars, "children": children}}))

    def play(self, playbook: str, *args: str, **extra: Any) -> subprocess.CompletedProcess[str]:
        """``cd playbooks && ansible-playbook <playbook> -i <inventory> ...`` (the bundled ansible.cfg applies)."""
        argv = ["ansible-playbook", playbook, "-i", str(self.inventory), *args]
        if extra:
            argv += ["-e", json.dumps(extra)]
        return subprocess.run(argv, cwd=PLAYBOOKS, env=self.env, capture_output=True, text=True, timeout=900,
                              check=False)

    def checksums(self, host: str) -> dict[str, str]:
        with self.scopes[host].connect() as conn:
            return table_checksums(conn)

    def all_checksums(self) -> dict[str, dict[str, str]]:
        return {host: self.checksums(host) for host in self.scopes}

    def query(self, host: str, statement: str, params: tuple[Any, ...] = ()) -> Any:
        with self.scopes[host].connect() as conn:
            return conn.execute(statement, params).fetchone()[0]

    def pending(self, host: str) -> int:
        return self.query(host, "SELECT count(*) FROM meta_relationships r "
                                "WHERE NOT EXISTS (SELECT 1 FROM meta_items m WHERE m.id = r.id)")

    def reports(self) -> dict[str, Path]:
        """Run id -> report directory of every run so far."""
        if not self.report_dir.is_dir():
            return {}
        return {path.name: path for path in self.report_dir.iterdir() if path.is_dir()}


def recap(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """PLAY RECAP per host: ok, changed, unreachable, failed."""
    out = {}
    for host, ok, changed, unreachable, failed in RECAP.findall(proc.stdout):
        out[host] = {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
    assert out, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    return proc


def make_fleet(pg_cluster: Any, collection_env: dict[str, str], tmp_path: Path, e2e_role: tuple[str, str],
               mode: str) -> Iterator[Fleet]:
    env = dict(collection_env, **{PASSWORD_ENV: e2e_role[1]})
    for name in ("ANSIBLE_CONFIG", "YUANTUS_TENANCY_MODE", "YUANTUS_DATABASE_URL", "YUANTUS_DATABASE_URL_TEMPLATE"):
        env.pop(name, None)
    fleet = Fleet(cluster=pg_cluster, mode=mode, tmp=tmp_path, env=env, role=e2e_role)
    try:
        yield fleet
    finally:
        for db in fleet.scopes.values():
            db.drop()


@pytest.fixture
def org_fleet(pg_cluster: Any, collection_env: dict[str, str], tmp_path: Path,
              e2e_role: tuple[str, str]) -> Iterator[Fleet]:
    """db-per-tenant-org: tenant-1/org-1, tenant-1/org-2, tenant-2/org-1 (no orphans; tests add what they need)."""
    for fleet in make_fleet(pg_cluster, collection_env, tmp_path, e2e_role, "db-per-tenant-org"):
        fleet.add("tenant-1__org-1", "tenant-1", "org-1")
        fleet.add("tenant-1__org-2", "tenant-1", "org-2", existing_items=3)
        fleet.add("tenant-2__org-9", "tenant-2", "org-9")
        yield fleet


@pytest.fixture
def tenant_fleet(pg_cluster: Any, collection_env: dict[str, str], tmp_path: Path,
                 e2e_role: tuple[str, str]) -> Iterator[Fleet]:
    """db-per-tenant, two tenants."""
    for fleet in make_fleet(pg_cluster, collection_env, tmp_path, e2e_role, "db-per-tenant"):
        fleet.add("tenant-1.db", "tenant-1")
        fleet.add("tenant-2.db", "tenant-2")
        yield fleet


@pytest.fixture
def single_fleet(pg_cluster: Any, collection_env: dict[str, str], tmp_path: Path,
                 e2e_role: tuple[str, str]) -> Iterator[Fleet]:
    """single: one host with no connection variables; the URL comes from YUANTUS_DATABASE_URL."""
    for fleet in make_fleet(pg_cluster, collection_env, tmp_path, e2e_role, "single"):
        db = fleet.add("yuantus", rows=150)
        fleet.env.update(YUANTUS_TENANCY_MODE="single", YUANTUS_DATABASE_URL=fleet.url(db.name))
        yield fleet
