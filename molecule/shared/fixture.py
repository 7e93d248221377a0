"""The Molecule scenarios' databases: created, seeded and fingerprinted on the scenario's PostgreSQL containers.

A scenario describes its servers and databases in ``<scenario>/vars/fixture.yml``::

    servers:
      a: {container: relmigrate-default-a, port_env: RELMIGRATE_PG_PORT_1}
    identity: {server: a, database: yuantus_identity, tenants: {tenant-1: [org-1, org-2]}}
    databases:
      - {server: a, name: yuantus_mt_pg__tenant-1__org-1, scope: tenant-1__org-1, rows: 1500, seed: 1,
         orphans: {missing_type: 1, missing_source: 2, missing_related: 1}, existing_items: 2}
      - {server: a, name: yuantus_mt_pg__tenant-1__org-2, scope: tenant-1__org-2, legacy_table: false}

``prepare`` (re)creates every database with our minimal Yuantus schema, seeds it with ``tools/yuantus_fixture.py``
and writes ``state.json``: per database its server, port, the seed summary (expected preflight counts, orphan and
pre-existing ids) and the fingerprint of every table and schema before any migration. The superuser password comes
from ``$RELMIGRATE_PG_PASSWORD``, the ports from the variables the spec names; nothing secret is written.

CLI (the scenarios' prepare playbook)::

    python molecule/shared/fixture.py prepare SCENARIO_DIR/vars/fixture.yml STATE_DIR/state.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

from yuantus_fixture import load_identity_schema, load_schema, seed_legacy, table_checksums

HOST = "127.0.0.1"
SUPERUSER = "postgres"
PASSWORD_ENV = "RELMIGRATE_PG_PASSWORD"


def load_spec(path: Path) -> dict[str, Any]:
    """The scenario's ``fixture.yml``."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def server_port(spec: dict[str, Any], server: str) -> int:
    """The loopback port of a server of the spec (from the environment variable it names)."""
    variable = spec["servers"][server]["port_env"]
    value = os.environ.get(variable, "")
    if not value.isdigit():
        raise SystemExit(f"fixture: ${variable} is not set (source molecule/scripts/env.sh or use run_all.sh)")
    return int(value)


def connect(port: int, dbname: str) -> psycopg.Connection:
    """An autocommit superuser connection to ``dbname`` on the container listening on ``port``."""
    return psycopg.connect(host=HOST, port=port, user=SUPERUSER, password=os.environ[PASSWORD_ENV],
                           dbname=dbname, autocommit=True, connect_timeout=10)


def recreate_database(port: int, name: str) -> None:
    """Drop (forcing sessions out) and create database ``name``."""
    with connect(port, "postgres") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def fingerprint(conn: psycopg.Connection) -> dict[str, Any]:
    """Schemas and per-table content fingerprints: equal fingerprints mean an unchanged database."""
    schemas = [row[0] for row in conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' "
        "ORDER BY 1").fetchall()]
    return {"schemas": schemas, "tables": table_checksums(conn)}


def create_identity(port: int, spec: dict[str, Any]) -> None:
    """The identity database with the spec's tenants and organisations."""
    recreate_database(port, spec["database"])
    with connect(port, spec["database"]) as conn:
        load_identity_schema(conn)
        with conn.transaction():
            for tenant_id, orgs in spec["tenants"].items():
                conn.execute("INSERT INTO auth_tenants (id, name, is_active, created_at) VALUES (%s, %s, true, now())",
                             (tenant_id, tenant_id))
                for org_id in orgs:
                    conn.execute("INSERT INTO auth_organizations (id, tenant_id, name, is_active, created_at) "
                                 "VALUES (%s, %s, %s, true, now())", (org_id, tenant_id, org_id))


def create_scope(port: int, db: dict[str, Any]) -> dict[str, Any]:
    """One scope database: schema, seeded legacy rows (or no legacy table); returns its state record."""
    recreate_database(port, db["name"])
    with connect(port, db["name"]) as conn:
        load_schema(conn)
        summary = seed_legacy(conn, int(db.get("rows", 1000)), seed=int(db.get("seed", 0)),
                              orphans=db.get("orphans"), existing_items=int(db.get("existing_items", 0)))
        if not db.get("legacy_table", True):
            conn.execute("DROP TABLE meta_relationships")
        record = {
            "server": db["server"], "port": port, "scope": db.get("scope"), "legacy_table": db.get("legacy_table", True),
            "counts": summary["counts"], "orphan_ids": summary["orphan_ids"],
            "existing_item_ids": summary["existing_item_ids"], "before": fingerprint(conn),
        }
    return record


def prepare(spec_path: Path, state_path: Path) -> dict[str, Any]:
    """Create every database of the spec; write and return the state."""
    spec = load_spec(spec_path)
    if spec.get("identity"):
        create_identity(server_port(spec, spec["identity"]["server"]), spec["identity"])
    state: dict[str, Any] = {"databases": {}}
    for db in spec["databases"]:
        state["databases"][db["name"]] = create_scope(server_port(spec, db["server"]), db)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return state


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("prepare", help="create and seed the scenario's databases, write the state file")
    cmd.add_argument("spec", type=Path)
    cmd.add_argument("state", type=Path)
    args = parser.parse_args(argv)
    state = prepare(args.spec, args.state)
    for name, record in state["databases"].items():
        print(f"{name}: server {record['server']}, {record['counts']['total']} legacy rows, "
              f"{record['counts']['orphans']} orphans, {len(record['before']['tables'])} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
