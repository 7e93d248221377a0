"""The documented example inventories: they parse, name the right scopes, and hold no password."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from scopes_helpers import REPO

EXAMPLES = {
    "single": (["yuantus"], {}),
    "db-per-tenant": (["tenant-1", "tenant-2"], {}),
    "db-per-tenant-org": (["tenant-1__org-1", "tenant-1__org-2", "tenant-2__t2-org-1"],
                          {"tenant-1": ["tenant-1__org-1", "tenant-1__org-2"], "tenant-2": ["tenant-2__t2-org-1"]}),
}
# user:password@ in a URL outside a comment; placeholders in comments ("user:pass@db") are documentation
CREDENTIALS = re.compile(r"://[^\s:/@]+:[^\s@{]+@")


@pytest.mark.parametrize("mode", sorted(EXAMPLES))
def test_static_inventory(run_cli: Any, mode: str) -> None:
    hosts, groups = EXAMPLES[mode]
    result = run_cli("ansible-inventory", "-i", str(REPO / "inventories" / mode / "hosts.yml"), "--list",
                     env={"ANSIBLE_CONFIG": str(REPO / "playbooks" / "ansible.cfg")})
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    data = json.loads(result.stdout)
    hostvars = data["_meta"]["hostvars"]
    assert sorted(hostvars) == hosts
    for name, members in groups.items():
        assert sorted(data[name]["hosts"]) == members
    for host in hosts:
        assert hostvars[host]["yuantus_tenancy_mode"] == mode
        assert hostvars[host]["ansible_connection"] == "local"
        if mode == "db-per-tenant-org":
            assert host == f"{hostvars[host]['yuantus_tenant_id']}__{hostvars[host]['yuantus_org_id']}"


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO).as_posix() for mode in EXAMPLES
                                        for p in (REPO / "inventories" / mode).glob("*.yml")))
def test_no_password_in_example_files(path: str) -> None:
    text = (REPO / path).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not CREDENTIALS.search(code), f"{path} holds a URL with credentials"
    assert yaml.safe_load(text)  # valid YAML


@pytest.mark.parametrize("mode", ["db-per-tenant", "db-per-tenant-org"])
def test_example_scopes_config_loads(parse_inventory: Any, mode: str) -> None:
    config = yaml.safe_load((REPO / "inventories" / mode / "yuantus.scopes.yml").read_text())
    assert config["tenancy_mode"] == mode
    config.pop("plugin")
    method = "_fetch_identity_rows" if config.get("source") == "identity" else "_fetch_database_ids"
    org = "org-1" if mode == "db-per-tenant-org" else None
    inventory = parse_inventory(config, fake={method: [("tenant-1", org)]})
    assert [h.name for h in inventory.groups["yuantus_scopes"].get_hosts()] == (
        ["tenant-1__org-1"] if org else ["tenant-1"])
