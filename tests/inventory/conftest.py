"""Helpers for the tests of the ``yuantus.relmigrate.scopes`` inventory plugin and the example inventories."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pgsandbox import Cluster
from scopes_helpers import PLUGIN, REPO, YUANTUS_ENV
from yuantus_fixture import load_identity_schema


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No YUANTUS_* variable leaks from the caller's shell into the plugin's env fallbacks."""
    for name in YUANTUS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def parse_inventory(clean_env: None, tmp_path: Path) -> Callable[..., Any]:
    """Write a ``*.scopes.yml`` from a dict, run the plugin in-process, return the reconciled ``InventoryData``.

    ``fake`` (optional) maps ``_fetch_identity_rows`` / ``_fetch_database_ids`` to rows, replacing the database.
    """
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    def parse(config: dict[str, Any], name: str = "test.scopes.yml", fake: dict[str, Any] | None = None) -> Any:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(dict({"plugin": PLUGIN}, **config)))
        plugin = inventory_loader.get(PLUGIN)
        assert plugin is not None, "the collection's inventory plugin did not load"
        for method, rows in (fake or {}).items():
            setattr(plugin, method, lambda mode, rows=rows: rows)
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(path), cache=False)
        inventory.reconcile_inventory()
        return inventory

    return parse


@pytest.fixture
def run_cli(collection_env: dict[str, str], clean_env: None) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run an ansible CLI of the venv with this collection on the path; ``env`` adds variables."""

    def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in collection_env.items() if k not in YUANTUS_ENV}
        full_env.update(env or {})
        return subprocess.run([str(REPO / ".venv" / "bin" / argv[0]), *argv[1:]], env=full_env,
                              capture_output=True, text=True, timeout=120, check=False)

    return run


@pytest.fixture
def identity_db(pg_cluster: Cluster) -> Iterator[str]:
    """An identity database (minimal schema) with active and inactive tenants and orgs; yields its name.

    tenant-1: org-1, org-2 active, org-x inactive; tenant-2: t2-org-1; tenant-3 inactive (org t3-org-1 active);
    tenant-4 active without orgs; "acme corp" (id needs sanitising) with org "hq/eu".
    """
    name = f"identity_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name)
    tenants = [("tenant-1", True), ("tenant-2", True), ("tenant-3", False), ("tenant-4", True), ("acme corp", True)]
    orgs = [("org-1", "tenant-1", True), ("org-2", "tenant-1", True), ("org-x", "tenant-1", False),
            ("t2-org-1", "tenant-2", True), ("t3-org-1", "tenant-3", True), ("hq/eu", "acme corp", True)]
    try:
        with pg_cluster.connect(name) as conn:
            load_identity_schema(conn)
            for tenant_id, active in tenants:
                conn.execute("INSERT INTO auth_tenants (id, name, is_active, created_at) VALUES (%s, %s, %s, now())",
                             (tenant_id, tenant_id.title(), active))
            for org_id, tenant_id, active in orgs:
                conn.execute("INSERT INTO auth_organizations (id, tenant_id, name, is_active, created_at) "
                             "VALUES (%s, %s, %s, %s, now())", (org_id, tenant_id, org_id, active))
        yield name
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def scope_databases(pg_cluster: Cluster) -> Iterator[Callable[[list[str]], str]]:
    """Create empty databases named ``<prefix>__<suffix>`` under a fresh prefix; returns the prefix. Dropped after."""
    created: list[str] = []

    def make(suffixes: list[str], others: list[str] = ()) -> str:  # type: ignore[assignment]
        prefix = f"sc{uuid.uuid4().hex[:8]}"
        for name in [f"{prefix}__{suffix}" for suffix in suffixes] + [f"{prefix}{other}" for other in others]:
            pg_cluster.create_database(name)
            created.append(name)
        return prefix

    yield make
    for name in created:
        pg_cluster.drop_database(name)
