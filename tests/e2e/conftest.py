"""Fleets of scope databases for the end-to-end tests: real PostgreSQL (tests/conftest.py's cluster), a generated
inventory per test, and real ``ansible-playbook`` runs of ``playbooks/*.yml`` with the bundled ansible.cfg."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2elib import PASSWORD_ENV, Fleet


@pytest.fixture(scope="session")
def e2e_role(pg_cluster: Any) -> tuple[str, str]:
    """A login role with a distinctive password that every e2e scope URL uses (the secret the tests look for)."""
    name = "relmig_e2e"
    password = f"Pw-{secrets.token_hex(12)}-e2eSecret"
    pg_cluster.create_role(name, password, superuser=True)
    return name, password


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
