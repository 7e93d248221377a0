"""Plain helpers of the inventory tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgsandbox import Cluster

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "yuantus.relmigrate.scopes"
YUANTUS_ENV = ("YUANTUS_TENANCY_MODE", "YUANTUS_DATABASE_URL", "YUANTUS_DATABASE_URL_TEMPLATE",
               "YUANTUS_IDENTITY_DATABASE_URL", "YUANTUS_TENANT_ID", "YUANTUS_ORG_ID")


def server_url(cluster: Cluster, dbname: str, password: str | None = None, port: int | None = None) -> str:
    """A URL whose database part is written as is (``cluster.url`` percent-encodes the braces of a template)."""
    base = cluster.url("postgres", password=password).rsplit("/", 1)[0]
    if port is not None:
        base = base.replace(f":{cluster.port}", f":{port}")
    return f"{base}/{dbname}"


def hostnames(inventory: Any, group: str = "all") -> list[str]:
    """Sorted names of the hosts of ``group`` (including those of its child groups)."""
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def secret_free(text: str, cluster: Cluster) -> bool:
    """True when ``text`` holds neither the cluster's password nor a URL with credentials."""
    return cluster.password not in text and "://postgres:" not in text
