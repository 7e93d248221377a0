"""Unit tests of the scopes inventory plugin: a fake source fed to the populate step (no database)."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleError, AnsibleParserError
from scopes_helpers import hostnames

ORG_ROWS = [("tenant-1", "org-1"), ("tenant-1", "org-2"), ("tenant-2", "org-1"), ("acme corp", "hq/eu")]


def _org(parse: Any, **config: Any) -> Any:
    config = dict({"tenancy_mode": "db-per-tenant-org"}, **config)
    return parse(config, fake={"_fetch_database_ids": ORG_ROWS})


def test_org_mode_hosts_groups_and_vars(parse_inventory: Any) -> None:
    inventory = _org(parse_inventory)
    assert hostnames(inventory) == ["acme_corp__hq_eu", "tenant-1__org-1", "tenant-1__org-2", "tenant-2__org-1"]
    # tenant groups keep the '-' of the id and hang under the scope group
    assert hostnames(inventory, "tenant-1") == ["tenant-1__org-1", "tenant-1__org-2"]
    assert hostnames(inventory, "acme_corp") == ["acme_corp__hq_eu"]
    scope_group = inventory.groups["yuantus_scopes"]
    assert sorted(g.name for g in scope_group.child_groups) == ["acme_corp", "tenant-1", "tenant-2"]
    assert hostnames(inventory, "yuantus_scopes") == hostnames(inventory)
    host_vars = inventory.get_host("acme_corp__hq_eu").get_vars()
    assert host_vars["yuantus_tenancy_mode"] == "db-per-tenant-org"
    assert host_vars["yuantus_tenant_id"] == "acme corp"  # as stored; the resolver sanitises it
    assert host_vars["yuantus_org_id"] == "hq/eu"
    assert "yuantus_database_name" not in host_vars  # no template known
    group_vars = scope_group.get_vars()
    assert group_vars["ansible_connection"] == "local"
    assert group_vars["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert not any(key.endswith(("_url", "_url_template")) for key in group_vars)


def test_tenant_mode_host_is_the_tenant_and_no_tenant_groups(parse_inventory: Any) -> None:
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant"},
                                fake={"_fetch_database_ids": [("tenant-1", None), ("tenant-2", None)]})
    assert hostnames(inventory) == ["tenant-1", "tenant-2"]
    assert "tenant-1" not in inventory.groups
    assert "yuantus_org_id" not in inventory.get_host("tenant-1").get_vars()


def test_single_mode_needs_no_source(parse_inventory: Any) -> None:
    inventory = parse_inventory({"tenancy_mode": "single"})
    assert hostnames(inventory) == ["yuantus"]
    assert inventory.get_host("yuantus").get_vars()["yuantus_tenancy_mode"] == "single"
    renamed = parse_inventory({"tenancy_mode": "single", "single_host_name": "plm", "connection": ""})
    assert hostnames(renamed) == ["plm"]
    assert "ansible_connection" not in renamed.groups["yuantus_scopes"].get_vars()


def test_tenancy_mode_from_environment(parse_inventory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUANTUS_TENANCY_MODE", "db-per-tenant")
    inventory = parse_inventory({}, fake={"_fetch_database_ids": [("tenant-9", None)]})
    assert hostnames(inventory) == ["tenant-9"]


@pytest.mark.parametrize(("config", "expected"), [
    ({"include_tenants": ["tenant-*"]}, ["tenant-1__org-1", "tenant-1__org-2", "tenant-2__org-1"]),
    ({"exclude_tenants": ["tenant-1"]}, ["acme_corp__hq_eu", "tenant-2__org-1"]),
    ({"include_tenants": ["acme_corp"]}, ["acme_corp__hq_eu"]),  # the sanitised id matches too
    ({"include_orgs": ["org-1"]}, ["tenant-1__org-1", "tenant-2__org-1"]),
    ({"exclude_orgs": ["org-*"]}, ["acme_corp__hq_eu"]),
    ({"include_scopes": ["*__org-2", "acme*"]}, ["acme_corp__hq_eu", "tenant-1__org-2"]),
    ({"exclude_scopes": ["tenant-?__org-1"]}, ["acme_corp__hq_eu", "tenant-1__org-2"]),
    ({"include_tenants": ["tenant-1"], "exclude_scopes": ["*org-1"]}, ["tenant-1__org-2"]),
])
def test_include_exclude_filters(parse_inventory: Any, config: dict[str, Any], expected: list[str]) -> None:
    assert hostnames(_org(parse_inventory, **config)) == expected


def test_duplicate_ids_after_sanitising_are_one_scope(parse_inventory: Any) -> None:
    rows = [("t 1", "o"), ("t_1", "o")]
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant-org"}, fake={"_fetch_database_ids": rows})
    assert hostnames(inventory) == ["t_1__o"]


def test_compose_groups_keyed_groups(parse_inventory: Any) -> None:
    inventory = _org(parse_inventory, compose={"scope_label": "yuantus_tenant_id ~ '/' ~ yuantus_org_id",
                                               "ansible_connection": "'ssh' if yuantus_tenant_id == 'tenant-2' "
                                                                     "else 'local'"},
                     groups={"first_orgs": "yuantus_org_id == 'org-1'"},
                     keyed_groups=[{"key": "yuantus_org_id", "prefix": "org"}])
    assert inventory.get_host("tenant-1__org-2").get_vars()["scope_label"] == "tenant-1/org-2"
    # compose sets a host variable, which beats the scope group's ansible_connection: local
    assert inventory.get_host("tenant-2__org-1").get_vars()["ansible_connection"] == "ssh"
    assert hostnames(inventory, "first_orgs") == ["tenant-1__org-1", "tenant-2__org-1"]
    # keyed groups are sanitised by Ansible's constructed logic (always, silently)
    assert hostnames(inventory, "org_org_1") == ["tenant-1__org-1", "tenant-2__org-1"]
    assert hostnames(inventory, "org_hq_eu") == ["acme_corp__hq_eu"]


def test_strict_compose_error(parse_inventory: Any) -> None:
    with pytest.raises(AnsibleError, match="no_such_variable"):
        _org(parse_inventory, strict=True, compose={"x": "no_such_variable.attr"})
    # not strict: the broken expression is skipped
    assert "x" not in _org(parse_inventory, compose={"x": "no_such_variable.attr"}).get_host(
        "tenant-1__org-1").get_vars()


def test_database_name_from_template_without_connecting(parse_inventory: Any) -> None:
    template = "postgresql+psycopg://u:secret-pw@db.example:5432/yuantus_mt_pg__{tenant_id}__{org_id}"
    inventory = _org(parse_inventory, database_url_template=template)
    assert inventory.get_host("acme_corp__hq_eu").get_vars()["yuantus_database_name"] == \
        "yuantus_mt_pg__acme_corp__hq_eu"
    assert "yuantus_database_url_template" not in inventory.groups["yuantus_scopes"].get_vars()


def test_set_connection_vars_keeps_values_as_given(parse_inventory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SCOPES_TEMPLATE", "postgresql://u:pw-from-env@h/db_{tenant_id}__{org_id}")
    lookup = "{{ lookup('ansible.builtin.env', 'TEST_SCOPES_TEMPLATE') }}"
    inventory = _org(parse_inventory, database_url_template=lookup, set_connection_vars=True)
    group_vars = inventory.groups["yuantus_scopes"].get_vars()
    # a reference stays a reference: the password is not copied into the inventory
    assert group_vars["yuantus_database_url_template"] == lookup
    # but the plugin itself rendered it (database names come from the rendered template)
    assert inventory.get_host("tenant-1__org-1").get_vars()["yuantus_database_name"] == "db_tenant-1__org-1"


def test_reserved_tenant_group_name_is_refused(parse_inventory: Any) -> None:
    with pytest.raises(AnsibleParserError, match="reserved"):
        parse_inventory({"tenancy_mode": "db-per-tenant-org"}, fake={"_fetch_database_ids": [("all", "o")]})
    inventory = parse_inventory({"tenancy_mode": "db-per-tenant-org", "tenant_groups": False},
                                fake={"_fetch_database_ids": [("all", "o")]})
    assert hostnames(inventory) == ["all__o"]


@pytest.mark.parametrize(("name", "accepted"), [
    ("yuantus.scopes.yml", True), ("scopes.yaml", True), ("prod-scopes.yml", True),
    ("hosts.yml", False), ("scopes.json", False), ("yuantus.scopes.yml.bak", False), ("inventory.yaml", False),
])
def test_verify_file(tmp_path: Any, name: str, accepted: bool) -> None:
    from ansible.plugins.loader import inventory_loader

    path = tmp_path / name
    path.write_text("plugin: yuantus.relmigrate.scopes\n")
    assert inventory_loader.get("yuantus.relmigrate.scopes").verify_file(str(path)) is accepted


def test_verify_file_missing(tmp_path: Any) -> None:
    from ansible.plugins.loader import inventory_loader

    assert inventory_loader.get("yuantus.relmigrate.scopes").verify_file(str(tmp_path / "x.scopes.yml")) is False


def test_wrong_plugin_name_is_refused(parse_inventory: Any, tmp_path: Any) -> None:
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    path = tmp_path / "other.scopes.yml"
    path.write_text("plugin: community.docker.docker_containers\n")
    with pytest.raises(AnsibleParserError, match="Incorrect plugin name"):
        inventory_loader.get("yuantus.relmigrate.scopes").parse(InventoryData(), DataLoader(), str(path))


@pytest.mark.parametrize(("config", "message"), [
    ({"tenancy_mode": "db-per-tenant-org", "source": "databases"}, "needs database_url_template"),
    ({"tenancy_mode": "db-per-tenant-org", "source": "identity"}, "needs identity_database_url"),
    ({"tenancy_mode": "db-per-tenant-org", "database_url_template": "postgresql://u:pw@h/db_{tenant_id}"},
     r"no \{org_id\} placeholder"),
    ({"tenancy_mode": "db-per-tenant", "database_url_template": "postgresql://u:pw@h-{tenant_id}/db"},
     "ids in the database name"),
    ({"tenancy_mode": "db-per-tenant", "database_url_template": "mysql://u:pw@h/db_{tenant_id}"},
     "not a PostgreSQL URL"),
])
def test_configuration_errors(parse_inventory: Any, config: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleParserError, match=message) as caught:
        parse_inventory(config)
    assert "pw@" not in str(caught.value)
