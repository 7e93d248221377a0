"""Fixtures of the module tests: the modules run through ``ansible localhost -m`` against the session's PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pgsandbox import Cluster
from psycopg import sql
from relmig_support import Ansible


@pytest.fixture
def ansible(collection_env: dict[str, str]) -> Ansible:
    """Run yuantus.relmigrate modules as Ansible does (``ansible localhost -m MODULE -a JSON``)."""
    return Ansible(collection_env)


@pytest.fixture
def role_name(pg_cluster: Cluster) -> Iterator[str]:
    """A unique role name; the role (if a test creates it) is dropped afterwards with what it was granted."""
    name = f"relmig_role_{uuid.uuid4().hex[:8]}"
    yield name
    with pg_cluster.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            return
        databases = [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate")]
    for database in databases:
        with pg_cluster.connect(database) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    with pg_cluster.connect() as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
