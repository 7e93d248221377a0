"""Tenancy through the modules: options and the controller's YUANTUS_* environment variables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pgsandbox import Cluster
from relmig_support import INFO_MODULE, MODULE, Ansible, failed, ok, scalar
from yuantus_fixture import ScopeDatabase, create_scope_database, seed_legacy


@pytest.fixture
def tenant_dbs(pg_cluster: Cluster) -> Iterator[tuple[str, dict[str, ScopeDatabase]]]:
    """Two db-per-tenant-org databases and one db-per-tenant database, and the URL template naming them."""
    prefix = f"relmig_mt_{uuid.uuid4().hex[:6]}"
    names = {"org": f"{prefix}__acme_corp__org-1", "other": f"{prefix}__acme_corp__org-2",
             "default": f"{prefix}__acme_corp__default"}
    dbs = {key: create_scope_database(pg_cluster, name, "minimal") for key, name in names.items()}
    template = pg_cluster.url("DBNAME").replace("DBNAME", prefix + "__{tenant_id}__{org_id}")
    try:
        for seed, db in enumerate(dbs.values()):
            with db.connect() as conn:
                seed_legacy(conn, 20, seed=seed)
        yield template, dbs
    finally:
        for db in dbs.values():
            db.drop()


def test_tenancy_by_options(ansible: Ansible, tenant_dbs: tuple[str, dict[str, ScopeDatabase]]) -> None:
    template, dbs = tenant_dbs
    args = {"tenancy_mode": "db-per-tenant-org", "database_url_template": template, "tenant_id": " acme corp ",
            "org_id": "org-1"}
    result = ok(ansible.run(MODULE, {**args, "batch_size": 7}))
    assert result["database"] == dbs["org"].name and result["migrated"] == 20
    assert result["scope"] == {"host": "127.0.0.1", "port": dbs["org"].cluster.port, "database": dbs["org"].name,
                               "user": "postgres", "tenancy_mode": "db-per-tenant-org", "tenant_id": "acme_corp",
                               "org_id": "org-1"}
    with dbs["other"].connect() as conn:   # the other org's database is untouched
        assert scalar(conn, "SELECT count(*) FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)") == 0

    result = ok(ansible.run(INFO_MODULE,
                            {**args, "tenancy_mode": "db-per-tenant", "org_id": None}))
    assert result["database"] == dbs["default"].name and result["scope"]["org_id"] == "default"

    missing = failed(ansible.run(MODULE, {**args, "org_id": ""}))
    assert "tenancy_mode db-per-tenant-org needs org_id" in missing["msg"]
    assert template.split("@")[0].split(":")[-1] not in missing["msg"]


def test_tenancy_by_environment(ansible: Ansible, tenant_dbs: tuple[str, dict[str, ScopeDatabase]]) -> None:
    template, dbs = tenant_dbs
    env = {"YUANTUS_TENANCY_MODE": "db-per-tenant-org", "YUANTUS_DATABASE_URL_TEMPLATE": template}
    run = ansible.run(MODULE, {"tenant_id": "acme corp", "org_id": "org-2"}, env=env)
    result = ok(run)
    assert result["database"] == dbs["other"].name and result["migrated"] == 20
    assert result["scope"]["tenancy_mode"] == "db-per-tenant-org" and result["scope"]["tenant_id"] == "acme_corp"
    assert dbs["other"].cluster.password not in run.output

    # single mode from YUANTUS_DATABASE_URL; an option overrides the environment
    env = {"YUANTUS_DATABASE_URL": dbs["default"].url}
    result = ok(ansible.run(INFO_MODULE, {}, env=env))
    assert result["database"] == dbs["default"].name and result["scope"]["tenancy_mode"] == "single"
    result = ok(ansible.run(MODULE, {"database_url": dbs["org"].url}, env=env, check=True))
    assert result["database"] == dbs["org"].name

    missing = failed(ansible.run(MODULE, {"tenant_id": "acme corp"}, env={"YUANTUS_TENANCY_MODE": "db-per-tenant"}))
    assert "needs database_url_template (or YUANTUS_DATABASE_URL_TEMPLATE in the environment)" in missing["msg"]
