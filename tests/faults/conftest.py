"""Fixtures of the fault tests: a seeded 100k-row template database and the fingerprint of a clean run on it."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultlib import (
    FAULT_EXISTING_ITEMS,
    FAULT_ROWS,
    clone_database,
    fingerprint,
    ledger_problems,
    run_module,
    seed_fault_database,
)


@pytest.fixture(scope="session")
def template_100k(pg_cluster: Any) -> Iterator[str]:
    """A database with 100k seeded legacy rows, used only as a template (never connected to by the tests)."""
    name = f"faults_tpl_{uuid.uuid4().hex[:8]}"
    seed_fault_database(pg_cluster, name)
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(scope="session")
def faults_env(_collections_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import os

    repo = Path(__file__).resolve().parents[2]
    venv_bin = repo / ".venv" / "bin"
    tmp = tmp_path_factory.mktemp("faults-ansible")
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(_collections_path),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_PYTHON_INTERPRETER": str(venv_bin / "python"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "local"), "ANSIBLE_HOME": str(tmp / "home"),
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


@pytest.fixture(scope="session")
def clean_fingerprint(pg_cluster: Any, template_100k: str, faults_env: dict[str, str]) -> dict[str, Any]:
    """The fingerprint after one uninterrupted module run on a fresh copy of the template (the parity oracle)."""
    name = clone_database(pg_cluster, template_100k, "f_clean")
    try:
        run = run_module(faults_env, "relationship_items", {"batch_size": 2000, "run_id": "clean"},
                         url=pg_cluster.url(name))
        assert run.rc == 0, run.text
        result = run.host_result()
        assert result["migrated"] == FAULT_ROWS - FAULT_EXISTING_ITEMS, result
        with pg_cluster.connect(name) as conn:
            print_ = fingerprint(conn)
            assert ledger_problems(conn) == []
        assert print_["duplicates"] == 0 and print_["missing_legacy"] == 0, print_
        assert print_["rows"] > FAULT_ROWS
        print_["clean_duration_s"] = result["duration_s"]
        print_["batches"] = result["batches"]
        print_["migrated"] = result["migrated"]
        return print_
    finally:
        pg_cluster.drop_database(name)
