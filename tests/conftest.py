"""Shared pytest fixtures: one disposable PostgreSQL cluster per session, fresh scope databases per test, and the
environment for running ``ansible``/``ansible-playbook`` against this collection."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from ansible.plugins.loader import init_plugin_loader
from pgsandbox import Cluster
from yuantus_fixture import ScopeDatabase, create_scope_database, full_schema_available


def _ensure_collection_link() -> Path:
    """``.collections/ansible_collections/yuantus/relmigrate -> repo`` (as tools/bootstrap.sh makes it)."""
    link = REPO / ".collections" / "ansible_collections" / "yuantus" / "relmigrate"
    if not (link.is_symlink() and link.resolve() == REPO):
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(REPO)
    return REPO / ".collections"


# Ansible's collection loader, installed once for the whole session, makes ``ansible_collections.yuantus.relmigrate``
# importable by every test and lets in-process plugin loading (the inventory tests) find the collection.
init_plugin_loader([str(_ensure_collection_link())])

_SCHEMA_KINDS = [
    "minimal",
    pytest.param("full", marks=[
        pytest.mark.full_schema,
        pytest.mark.skipif(not full_schema_available(), reason="real Yuantus schema dump not available"),
    ]),
]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A disposable PostgreSQL cluster (127.0.0.1, scram auth) for the whole session; removed at the end."""
    cluster = Cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _fresh_scope(cluster: Cluster, kind: str) -> Iterator[ScopeDatabase]:
    """Create a uniquely named database with the ``kind`` schema; drop it afterwards."""
    scope = create_scope_database(cluster, f"t_{kind}_{uuid.uuid4().hex[:12]}", kind)
    try:
        yield scope
    finally:
        scope.drop()


@pytest.fixture
def scope_db(pg_cluster: Cluster) -> Iterator[ScopeDatabase]:
    """A fresh database with the minimal Yuantus schema (``.name``, ``.url``, ``.dsn``, ``.connect()``)."""
    yield from _fresh_scope(pg_cluster, "minimal")


@pytest.fixture(params=_SCHEMA_KINDS)
def schema_kind(request: pytest.FixtureRequest) -> str:
    """``minimal`` and, when the real dump is available, ``full``."""
    return str(request.param)


@pytest.fixture
def any_scope_db(pg_cluster: Cluster, schema_kind: str) -> Iterator[ScopeDatabase]:
    """Like ``scope_db``, once per schema kind (``minimal``, ``full``)."""
    yield from _fresh_scope(pg_cluster, schema_kind)


@pytest.fixture
def scope_db_full(pg_cluster: Cluster) -> Iterator[ScopeDatabase]:
    """A fresh database with the real Yuantus schema dump (skipped when the dump is not available)."""
    if not full_schema_available():
        pytest.skip("real Yuantus schema dump not available")
    yield from _fresh_scope(pg_cluster, "full")


@pytest.fixture(scope="session")
def _collections_path() -> Path:
    """The collections path, with the link to this tree checked once per session."""
    return _ensure_collection_link()


@pytest.fixture
def collection_env(_collections_path: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for ``ansible``/``ansible-playbook`` subprocesses that load this tree as yuantus.relmigrate."""
    venv_bin = REPO / ".venv" / "bin"
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(_collections_path),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_PYTHON_INTERPRETER": str(venv_bin / "python"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env
