"""The scopes inventory plugin against a real PostgreSQL server (the session's disposable cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleParserError
from pgsandbox import Cluster, free_port
from scopes_helpers import PLUGIN, REPO, hostnames, secret_free, server_url

ORG_SUFFIXES = ["tenant-1__org-1", "tenant-1__org-2", "tenant-2__org-1", "acme_corp__hq_eu"]
# not matching the org template: too few parts, a character Yuantus would have sanitised, another prefix
ORG_OTHERS = ["__only-one", "__bad.name__org", "_x__tenant-1__org-1", "other"]


# -- source: identity ----------------------------------------------------------------------------------------------
def test_identity_source_org_mode_active_only(parse_inventory: Any, pg_cluster: Cluster, identity_db: str) -> None:
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant-org", "source": "identity",
                                 "identity_database_url": server_url(pg_cluster, identity_db)})
    # inactive org-x, inactive tenant-3 and org-less tenant-4 give no scope
    assert hostnames(inventory) == ["acme_corp__hq_eu", "tenant-1__org-1", "tenant-1__org-2", "tenant-2__t2-org-1"]
    assert hostnames(inventory, "tenant-1") == ["tenant-1__org-1", "tenant-1__org-2"]
    assert hostnames(inventory, "tenant-2") == ["tenant-2__t2-org-1"]
    assert sorted(g.name for g in inventory.groups["yuantus_scopes"].child_groups) == [
        "acme_corp", "tenant-1", "tenant-2"]
    acme = inventory.get_host("acme_corp__hq_eu").get_vars()
    assert (acme["yuantus_tenant_id"], acme["yuantus_org_id"]) == ("acme corp", "hq/eu")


def test_identity_source_include_inactive(parse_inventory: Any, pg_cluster: Cluster, identity_db: str) -> None:
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant-org", "source": "identity", "include_inactive": True,
                                 "identity_database_url": server_url(pg_cluster, identity_db)})
    assert {"tenant-1__org-x", "tenant-3__t3-org-1"} <= set(hostnames(inventory))


def test_identity_source_tenant_mode(parse_inventory: Any, pg_cluster: Cluster, identity_db: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUANTUS_IDENTITY_DATABASE_URL", server_url(pg_cluster, identity_db))
    monkeypatch.setenv("YUANTUS_DATABASE_URL_TEMPLATE", "postgresql+psycopg://u:pw@db/yuantus_{tenant_id}")
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant", "source": "identity",
                                 "exclude_tenants": ["acme*"]})
    assert hostnames(inventory) == ["tenant-1", "tenant-2", "tenant-4"]  # a tenant without orgs has a database
    assert inventory.get_host("tenant-4").get_vars()["yuantus_database_name"] == "yuantus_tenant-4"


def test_identity_database_without_tables(parse_inventory: Any, pg_cluster: Cluster) -> None:
    with pytest.raises(AnsibleParserError, match="auth_tenants") as caught:
        parse_inventory({"tenancy_mode": "db-per-tenant", "source": "identity",
                         "identity_database_url": server_url(pg_cluster, "postgres")})
    assert secret_free(str(caught.value), pg_cluster)


# -- source: databases ---------------------------------------------------------------------------------------------
def test_databases_source_org_mode(parse_inventory: Any, pg_cluster: Cluster, scope_databases: Any) -> None:
    prefix = scope_databases(ORG_SUFFIXES, ORG_OTHERS)
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant-org", "source": "databases",
                                 "database_url_template": server_url(pg_cluster, prefix + "__{tenant_id}__{org_id}")})
    # tenant-2__org-1 is a scope the identity database could not name (org ids are global)
    assert hostnames(inventory) == ["acme_corp__hq_eu", "tenant-1__org-1", "tenant-1__org-2", "tenant-2__org-1"]
    host_vars = inventory.get_host("acme_corp__hq_eu").get_vars()
    assert (host_vars["yuantus_tenant_id"], host_vars["yuantus_org_id"]) == ("acme_corp", "hq_eu")
    assert host_vars["yuantus_database_name"] == f"{prefix}__acme_corp__hq_eu"
    assert hostnames(inventory, "tenant-1") == ["tenant-1__org-1", "tenant-1__org-2"]


def test_databases_source_tenant_mode(parse_inventory: Any, pg_cluster: Cluster, scope_databases: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = scope_databases(["tenant-1", "tenant-2"], ["_tenant-3"])
    monkeypatch.setenv("YUANTUS_TENANCY_MODE", "db-per-tenant")
    monkeypatch.setenv("YUANTUS_DATABASE_URL_TEMPLATE", server_url(pg_cluster, prefix + "__{tenant_id}"))
    assert hostnames(parse_inventory({})) == ["tenant-1", "tenant-2"]


def test_databases_source_tenant_mode_org_placeholder_is_default(parse_inventory: Any, pg_cluster: Cluster,
                                                                 scope_databases: Any) -> None:
    prefix = scope_databases(["tenant-1__default", "tenant-2__org-1"])
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant",
                                 "database_url_template": server_url(pg_cluster, prefix + "__{tenant_id}__{org_id}")})
    assert hostnames(inventory) == ["tenant-1"]


def test_databases_source_filters_and_keyed_groups(parse_inventory: Any, pg_cluster: Cluster,
                                                   scope_databases: Any) -> None:
    prefix = scope_databases(ORG_SUFFIXES)
    inventory = parse_inventory({
        "tenancy_mode": "db-per-tenant-org",
        "database_url_template": server_url(pg_cluster, prefix + "__{tenant_id}__{org_id}"),
        "exclude_tenants": ["acme*"], "include_orgs": ["org-1"],
        "keyed_groups": [{"key": "yuantus_org_id", "prefix": "org"}],
        "compose": {"ansible_host": "'bastion-' ~ yuantus_tenant_id"},
    })
    assert hostnames(inventory) == ["tenant-1__org-1", "tenant-2__org-1"]
    assert hostnames(inventory, "org_org_1") == ["tenant-1__org-1", "tenant-2__org-1"]
    assert inventory.get_host("tenant-2__org-1").get_vars()["ansible_host"] == "bastion-tenant-2"


def test_maintenance_database_option(parse_inventory: Any, pg_cluster: Cluster, scope_databases: Any) -> None:
    prefix = scope_databases(["t__o"])
    template = server_url(pg_cluster, prefix + "__{tenant_id}__{org_id}")
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant-org", "database_url_template": template,
                                 "maintenance_database": "template1"})
    assert hostnames(inventory) == ["t__o"]
    with pytest.raises(AnsibleParserError, match="no_such_db") as caught:
        parse_inventory({"tenancy_mode": "db-per-tenant-org", "database_url_template": template,
                         "maintenance_database": "no_such_db"})
    assert secret_free(str(caught.value), pg_cluster)


# -- errors never show the password --------------------------------------------------------------------------------
def test_wrong_password(parse_inventory: Any, pg_cluster: Cluster) -> None:
    url = server_url(pg_cluster, "{tenant_id}", password="Wrong-Secret-42")
    with pytest.raises(AnsibleParserError, match="cannot connect to postgres@127.0.0.1") as caught:
        parse_inventory({"tenancy_mode": "db-per-tenant", "database_url_template": url})
    assert "Wrong-Secret-42" not in str(caught.value)


def test_unreachable_server(parse_inventory: Any, pg_cluster: Cluster) -> None:
    port = free_port()
    url = server_url(pg_cluster, "yuantus_identity", port=port)
    with pytest.raises(AnsibleParserError, match=f"cannot connect to postgres@127.0.0.1:{port}/yuantus_identity") \
            as caught:
        parse_inventory({"tenancy_mode": "db-per-tenant-org", "source": "identity", "identity_database_url": url,
                         "connect_timeout": 3})
    assert secret_free(str(caught.value), pg_cluster)


def test_malformed_url(parse_inventory: Any) -> None:
    with pytest.raises(AnsibleParserError, match="identity_database_url: the database URL is malformed") as caught:
        parse_inventory({"tenancy_mode": "db-per-tenant-org", "source": "identity",
                         "identity_database_url": "postgresql://user:Pa55word@host:notaport/db"})
    assert "Pa55word" not in str(caught.value)


# -- the CLI -------------------------------------------------------------------------------------------------------
def _write_config(path: Path, **config: Any) -> Path:
    path.write_text(yaml.safe_dump(dict({"plugin": PLUGIN}, **config)))
    return path


@pytest.fixture
def org_config(pg_cluster: Cluster, scope_databases: Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A generated ``*.scopes.yml`` (no URL in it) and the environment holding the template."""
    prefix = scope_databases(ORG_SUFFIXES, ORG_OTHERS)
    config = _write_config(tmp_path / "generated.scopes.yml", tenancy_mode="db-per-tenant-org", source="databases")
    return config, {"YUANTUS_DATABASE_URL_TEMPLATE": server_url(pg_cluster, prefix + "__{tenant_id}__{org_id}")}


def test_cli_graph_with_collection_ansible_cfg(run_cli: Any, org_config: tuple[Path, dict[str, str]],
                                               pg_cluster: Cluster) -> None:
    config, env = org_config
    # playbooks/ansible.cfg sets force_valid_group_names = ignore: tenant-1 kept, no warning
    result = run_cli("ansible-inventory", "-i", str(config), "--graph",
                     env=dict(env, ANSIBLE_CONFIG=str(REPO / "playbooks" / "ansible.cfg")))
    assert result.returncode == 0, result.stderr
    graph = result.stdout
    assert "@yuantus_scopes:" in graph and "|  |--@tenant-1:" in graph
    for host in ["tenant-1__org-1", "tenant-1__org-2", "tenant-2__org-1", "acme_corp__hq_eu"]:
        assert host in graph
    assert "only-one" not in graph and "other" not in graph
    assert "WARNING" not in result.stderr, result.stderr
    assert secret_free(result.stdout + result.stderr, pg_cluster)


def test_cli_limit_by_tenant(run_cli: Any, org_config: tuple[Path, dict[str, str]]) -> None:
    config, env = org_config
    result = run_cli("ansible", "-i", str(config), "tenant-1", "--list-hosts",
                     env=dict(env, ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS="ignore"))
    assert result.returncode == 0, result.stderr
    assert sorted(line.strip() for line in result.stdout.splitlines()[1:]) == ["tenant-1__org-1", "tenant-1__org-2"]


@pytest.mark.parametrize(("setting", "group", "warning"), [
    ("ignore", "tenant-1", None),
    ("never", "tenant-1", "Invalid characters were found in group names but not replaced"),
    ("always", "tenant_1", "Ansible renamed group tenant-1 to tenant_1"),
])
def test_cli_force_valid_group_names(run_cli: Any, org_config: tuple[Path, dict[str, str]], setting: str,
                                     group: str, warning: str | None) -> None:
    config, env = org_config
    result = run_cli("ansible-inventory", "-i", str(config), "--list",
                     env=dict(env, ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS=setting))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert sorted(data[group]["hosts"]) == ["tenant-1__org-1", "tenant-1__org-2"]
    stderr = " ".join(result.stderr.split())
    if warning is None:
        assert "WARNING" not in stderr, stderr
    else:
        assert warning in stderr


def test_cli_list_has_no_secret(run_cli: Any, org_config: tuple[Path, dict[str, str]], pg_cluster: Cluster,
                                tmp_path: Path) -> None:
    config, env = org_config
    env = dict(env, ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS="ignore")
    result = run_cli("ansible-inventory", "-i", str(config), "--list", env=env)
    assert result.returncode == 0, result.stderr
    assert secret_free(result.stdout + result.stderr, pg_cluster)
    # with set_connection_vars and a lookup, the variable is the lookup: still no password in the output ...
    lookup = "{{ lookup('ansible.builtin.env', 'YUANTUS_DATABASE_URL_TEMPLATE') }}"
    referencing = _write_config(tmp_path / "ref.scopes.yml", tenancy_mode="db-per-tenant-org",
                                database_url_template=lookup, set_connection_vars=True)
    listed = run_cli("ansible-inventory", "-i", str(referencing), "--list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert secret_free(listed.stdout + listed.stderr, pg_cluster)
    assert json.loads(listed.stdout)["_meta"]["hostvars"]["tenant-1__org-1"][
        "yuantus_database_url_template"] == lookup
    # ... and a task sees the rendered URL
    rendered = run_cli("ansible", "-i", str(referencing), "tenant-1__org-1", "-m", "ansible.builtin.debug",
                       "-a", "msg={{ yuantus_database_url_template == lookup('ansible.builtin.env', "
                             "'YUANTUS_DATABASE_URL_TEMPLATE') and ansible_connection == 'local' }}", env=env)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert '"msg": true' in rendered.stdout


def test_cli_error_has_no_secret(run_cli: Any, pg_cluster: Cluster, tmp_path: Path) -> None:
    config = _write_config(tmp_path / "bad.scopes.yml", tenancy_mode="db-per-tenant-org", source="identity")
    url = server_url(pg_cluster, "yuantus_identity", password="Leaky-Secret-77", port=free_port())
    result = run_cli("ansible-inventory", "-i", str(config), "--graph",
                     env={"YUANTUS_IDENTITY_DATABASE_URL": url, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    assert result.returncode != 0
    assert "cannot connect to postgres@127.0.0.1" in result.stderr
    assert "Leaky-Secret-77" not in result.stdout + result.stderr
