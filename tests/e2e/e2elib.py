"""Fleets of scope databases for the end-to-end tests, and helpers to read ``ansible-playbook`` runs."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yuantus_fixture import ScopeDatabase, create_scope_database, seed_legacy, table_checksums

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
PASSWORD_ENV = "RELMIGRATE_E2E_DB_PASSWORD"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


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
