"""Yuantus-compatible databases and generated legacy data, shared by the tests, the demo and the benchmarks.

* :func:`load_schema` loads our minimal tenant schema (``tools/schema/tenant_minimal.sql``) or the real dump
  (``tenant.sql`` + ``tenant_seed_meta.sql`` from the shared Yuantus directory, when available).
* :func:`seed_legacy` generates legacy ``meta_relationships`` data with set-based SQL (1,000,000 rows in seconds),
  deterministic for a given ``seed``, with the requested number of orphans and invalid rows.
* :func:`table_checksums` fingerprints tables for "unchanged byte for byte" assertions.
* :func:`create_demo` builds the identity database and the db-per-tenant-org scope databases of the demo.

CLI::

    python tools/yuantus_fixture.py demo --cluster-dir DIR [--rows N] [--schema minimal|full]
    python tools/yuantus_fixture.py seed (--dsn DSN | --cluster-dir DIR --dbname DB) --rows N [--load-schema KIND]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
SHARED_DIR_ENV = "YUANTUS_SHARED_DIR"
SCHEMA_KINDS = ("minimal", "full")
IDENTITY_DB = "yuantus_identity"
DB_PREFIX = "yuantus_mt_pg"
ORPHAN_KINDS = ("missing_type", "missing_source", "missing_related")
_TYPE_NS = uuid.UUID("6f1b2d2e-7c55-4d8e-9a61-3c0f2b7d9e10")
_MIX_MOD = 1_000_003  # prime modulus of the in-SQL pseudo-random mixing

ConnOrDsn = psycopg.Connection | str


class FixtureError(RuntimeError):
    """Raised for invalid fixture requests (e.g. the full schema is not available)."""


# -- schema --------------------------------------------------------------------------------------------------------
def shared_dir() -> Path:
    """The shared Yuantus directory: env ``YUANTUS_SHARED_DIR``, else ``<repo>/../shared/yuantus``."""
    return Path(os.environ.get(SHARED_DIR_ENV) or REPO.parent / "shared" / "yuantus")


def full_schema_available() -> bool:
    """True when the real Yuantus schema dump and its seed are readable."""
    schema = shared_dir() / "schema"
    return (schema / "tenant.sql").is_file() and (schema / "tenant_seed_meta.sql").is_file()


def schema_files(kind: str = "minimal", database: str = "tenant") -> list[Path]:
    """The SQL files that make a ``tenant`` or ``identity`` database of the given kind, in load order."""
    if kind not in SCHEMA_KINDS or database not in ("tenant", "identity"):
        raise FixtureError(f"unknown schema {database}/{kind}")
    if kind == "minimal":
        return [SCHEMA_DIR / f"{database}_minimal.sql"]
    if not full_schema_available():
        raise FixtureError(f"full Yuantus schema not found under {shared_dir()} (set {SHARED_DIR_ENV})")
    schema = shared_dir() / "schema"
    return [schema / "tenant.sql", schema / "tenant_seed_meta.sql"] if database == "tenant" else [
        schema / "identity.sql"]


def _sql_script(path: Path) -> str:
    """File contents without psql meta-commands (``\\restrict`` lines of newer pg_dump), runnable by psycopg."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("\\"))


def _run_scripts(conn_or_dsn: ConnOrDsn, files: Sequence[Path]) -> None:
    """Run SQL files in one transaction, then restore the search_path that pg_dump output clears."""
    with _connection(conn_or_dsn) as conn, conn.transaction():
        for path in files:
            conn.execute(_sql_script(path).encode("utf-8"))
        conn.execute("SELECT pg_catalog.set_config('search_path', '\"$user\", public', false)")


def load_schema(conn_or_dsn: ConnOrDsn, kind: str = "minimal") -> None:
    """Load a tenant/org database schema with Yuantus's base seed: ``minimal`` (ours) or ``full`` (real dump)."""
    _run_scripts(conn_or_dsn, schema_files(kind, "tenant"))


def load_identity_schema(conn_or_dsn: ConnOrDsn, kind: str = "minimal") -> None:
    """Load the identity database schema (``auth_tenants``, ``auth_organizations``...)."""
    _run_scripts(conn_or_dsn, schema_files(kind, "identity"))


class _Borrowed:
    """Context manager yielding a connection the caller owns (left open)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> psycopg.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def _connection(conn_or_dsn: ConnOrDsn) -> Any:
    """A context manager for a connection: opened (and closed) here for a DSN, borrowed otherwise."""
    if isinstance(conn_or_dsn, str):
        return psycopg.connect(conn_or_dsn, autocommit=True)
    return _Borrowed(conn_or_dsn)


# -- scope databases -----------------------------------------------------------------------------------------------
@dataclass
class ScopeDatabase:
    """A database on a sandbox cluster (tests: the ``scope_db`` fixture; demo and bench use the same)."""

    cluster: Any = field(repr=False)
    name: str
    kind: str = "minimal"

    @property
    def url(self) -> str:
        """SQLAlchemy URL with the superuser password (never print it)."""
        return self.cluster.url(self.name)

    @property
    def dsn(self) -> str:
        """libpq conninfo with the superuser password (never print it)."""
        return self.cluster.dsn(self.name)

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        """A new psycopg connection to this database, as the superuser."""
        return self.cluster.connect(self.name, autocommit=autocommit)

    def drop(self) -> None:
        """Drop the database (terminating open sessions)."""
        self.cluster.drop_database(self.name)


def create_scope_database(cluster: Any, name: str, kind: str | None = "minimal",
                          replace: bool = False) -> ScopeDatabase:
    """Create database ``name`` on ``cluster`` and load the tenant schema ``kind`` (``None``: empty database)."""
    if replace:
        cluster.drop_database(name)
    cluster.create_database(name)
    scope = ScopeDatabase(cluster=cluster, name=name, kind=kind or "empty")
    if kind is not None:
        with scope.connect() as conn:
            load_schema(conn, kind)
    return scope


# -- legacy data ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TypeSpec:
    """One legacy relationship type to create."""

    key: str
    name: str
    label: str
    source: str
    related: str

    @property
    def type_id(self) -> str:
        """Deterministic id (a UUID, as Yuantus uses), the same in every database and every call."""
        return str(uuid.uuid5(_TYPE_NS, self.key))


_BASE_TYPES = (
    _TypeSpec("part-bom", "Part BOM", "Part BOM", "Part", "Part"),  # already an ItemType in the seed
    _TypeSpec("document-link", "Document Link", "", "Part", "Document"),  # empty label -> name
    _TypeSpec("part-alternate", "Part Alternate", "Alternate Part", "Part", "Part"),
    _TypeSpec("part-substitute", "Part Substitute", "Substitute", "Part", "Part"),
    _TypeSpec("unnamed", "", "", "Document", "Part"),  # empty name -> ItemType id falls back to the type id
)


def legacy_type_specs(types: int) -> list[_TypeSpec]:
    """The first ``types`` legacy relationship types (the 5th has an empty name; later ones are custom)."""
    specs = list(_BASE_TYPES[:types])
    for number in range(len(specs) + 1, types + 1):
        specs.append(_TypeSpec(f"custom-{number}", f"Custom Link {number}", f"Custom link {number}",
                               "Document", "Document"))
    return specs


def _invalid_type_specs(count: int) -> list[_TypeSpec]:
    """Legacy types whose source (odd) or related (even) ItemType does not exist."""
    return [_TypeSpec(f"invalid-ref-{n}", f"Broken Link {n}", f"Broken link {n}",
                      f"Missing Type {n}" if n % 2 else "Part", "Part" if n % 2 else f"Missing Type {n}")
            for n in range(1, count + 1)]


def _insert_types(conn: psycopg.Connection, specs: Sequence[_TypeSpec]) -> None:
    """Insert legacy relationship types (idempotent across calls: same key, same id)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO meta_relationship_types (id, name, label, source_item_type, related_item_type, "
            "is_polymorphic, cascade_delete, max_quantity, property_definitions) "
            "VALUES (%s, %s, %s, %s, %s, false, false, NULL, NULL) ON CONFLICT DO NOTHING",
            [(s.type_id, s.name, s.label, s.source, s.related) for s in specs],
        )


def _insert_items(conn: psycopg.Connection, item_type: str, prefix: str, count: int, width: int) -> None:
    """Insert ``count`` plain items (Parts or Documents) ``<prefix><zero-padded n>``; some carry a permission."""
    conn.execute(
        """
        INSERT INTO meta_items (id, item_type_id, config_id, generation, is_current, state, is_versionable,
                                created_by_id, permission_id, properties)
        SELECT s.id, %(item_type)s::text, s.id, 1, true,
               CASE WHEN s.g %% 4 = 0 THEN 'Draft' ELSE 'Released' END, true, 1,
               CASE WHEN s.g %% 3 = 0 THEN 'Default' END,
               jsonb_build_object('item_number', s.id, 'name', %(item_type)s::text || ' ' || s.g)
        FROM (SELECT g, %(prefix)s::text || lpad(g::text, %(width)s::int, '0') AS id
              FROM generate_series(1, %(count)s::int) AS g) AS s
        """,
        {"item_type": item_type, "prefix": prefix, "count": count, "width": width},
    )


# properties by bucket v (0..19): NULL, JSON null, {}, sort_order already present, unicode, a number with more
# digits than a double holds, an explicit JSON null value, else the common BOM line.
_PROPERTIES_SQL = """
CASE m.v
  WHEN 0 THEN NULL
  WHEN 1 THEN 'null'
  WHEN 2 THEN '{}'
  WHEN 3 THEN '{"quantity": ' || m.q || ', "uom": "EA", "sort_order": ' || (g %% 97) || '}'
  WHEN 4 THEN '{"quantity": ' || m.q || ', "uom": "件", "note": "Schraube M4 – ø4 mm ✓ caf\\u00e9"}'
  WHEN 5 THEN '{"quantity": 12345678901234567890.123456789, "uom": "kg"}'
  WHEN 6 THEN '{"quantity": ' || m.q || ', "uom": "EA", "find_num": ' || ((g %% 100) * 10) || ', "ref": null}'
  ELSE '{"quantity": ' || m.q || ', "uom": "EA", "find_num": ' || ((g %% 100) * 10) || '}'
END::json
"""


def _insert_relationships(conn: psycopg.Connection, rows: int, specs: Sequence[_TypeSpec],
                          pools: dict[str, tuple[str, int]], mix: Sequence[int], prefix: str, width: int) -> None:
    """Insert ``rows`` valid legacy relationships in one INSERT ... SELECT generate_series."""
    params: dict[str, Any] = {
        "rows": rows, "prefix": prefix, "width": width, "ntypes": len(specs),
        "t_ids": [s.type_id for s in specs], "t_idx": list(range(len(specs))),
        "src_p": [pools[s.source][0] for s in specs], "src_n": [pools[s.source][1] for s in specs],
        "rel_p": [pools[s.related][0] for s in specs], "rel_n": [pools[s.related][1] for s in specs],
    }
    params.update({f"a{i}": value for i, value in enumerate(mix)})
    conn.execute(
        f"""
        INSERT INTO meta_relationships (id, relationship_type_id, source_id, related_id, properties, sort_order,
                                        state, created_by_id)
        SELECT %(prefix)s::text || lpad(g::text, %(width)s::int, '0'),
               t.type_id,
               t.src_p || lpad((1 + ((g::bigint * %(a2)s::bigint + %(a3)s::bigint) %% t.src_n))::text,
                               %(width)s::int, '0'),
               t.rel_p || lpad((1 + ((g::bigint * %(a4)s::bigint + %(a5)s::bigint) %% t.rel_n))::text,
                               %(width)s::int, '0'),
               {_PROPERTIES_SQL},
               (g %% 50) * 10,
               CASE WHEN m.s < 3 THEN NULL WHEN m.s = 3 THEN '' WHEN m.s < 7 THEN 'Released' ELSE NULL END,
               CASE WHEN g %% 7 = 0 THEN NULL ELSE 1 END
        FROM generate_series(1, %(rows)s::int) AS g
        CROSS JOIN LATERAL (
            SELECT ((g::bigint * %(a0)s::bigint + %(a1)s::bigint) %% {_MIX_MOD}) %% %(ntypes)s::int AS t_idx,
                   ((g::bigint * %(a6)s::bigint + %(a7)s::bigint) %% {_MIX_MOD}) %% 20 AS v,
                   ((g::bigint * %(a8)s::bigint + %(a9)s::bigint) %% {_MIX_MOD}) %% 10 AS s,
                   CASE WHEN g %% 3 = 0 THEN ((g %% 12) + 1)::text
                        ELSE round((g %% 40) / 4.0 + 0.25, 2)::text END AS q
        ) AS m
        JOIN unnest(%(t_idx)s::int[], %(t_ids)s::text[], %(src_p)s::text[], %(src_n)s::int[],
                    %(rel_p)s::text[], %(rel_n)s::int[]) AS t(idx, type_id, src_p, src_n, rel_p, rel_n)
          ON t.idx = m.t_idx
        """,
        params,
    )


def _split_special(rng: random.Random, rows: int, prefix: str, width: int,
                   wanted: dict[str, int]) -> dict[str, list[str]]:
    """Pick distinct legacy ids for each special category (orphans, invalid properties, pre-existing items)."""
    total = sum(wanted.values())
    if total > rows:
        raise FixtureError(f"{total} special rows requested but only {rows} rows")
    picked = sorted(rng.sample(range(1, rows + 1), total)) if total else []
    rng.shuffle(picked)
    out: dict[str, list[str]] = {}
    start = 0
    for name, count in wanted.items():
        out[name] = sorted(f"{prefix}{n:0{width}d}" for n in picked[start:start + count])
        start += count
    return out


def _insert_existing_items(conn: psycopg.Connection, ids: list[str]) -> None:
    """Pre-existing, unrelated meta_items rows that share their id with a legacy row."""
    conn.execute(
        """
        INSERT INTO meta_items (id, item_type_id, config_id, generation, is_current, state, is_versionable,
                                created_by_id, properties)
        SELECT i, 'Part', i, 1, true, 'Released', true, 1,
               jsonb_build_object('preexisting', true, 'name', 'Unrelated item ' || i)
        FROM unnest(%s::text[]) AS i
        """,
        (ids,),
    )


def _make_invalid_properties(conn: psycopg.Connection, ids: list[str]) -> None:
    """Give these rows properties that are not a JSON object: alternately a JSON string and a JSON array."""
    conn.execute(
        """
        UPDATE meta_relationships
        SET properties = CASE WHEN array_position(%s::text[], id) %% 2 = 1 THEN '"qty 4, see drawing"'::json
                              ELSE '[{"quantity": 1}, 2, "x"]'::json END
        WHERE id = ANY(%s::text[])
        """,
        (ids, ids),
    )


def _make_orphans(conn: psycopg.Connection, special: dict[str, list[str]]) -> None:
    """Break the references of the orphan rows (FK triggers off for this transaction: the full schema has FKs)."""
    if not any(special.get(kind) for kind in ORPHAN_KINDS):
        return
    before = conn.execute("SELECT current_setting('session_replication_role')").fetchone()[0]
    conn.execute("SELECT set_config('session_replication_role', 'replica', true)")
    column = {"missing_type": "relationship_type_id", "missing_source": "source_id",
              "missing_related": "related_id"}
    for kind in ORPHAN_KINDS:
        if special.get(kind):
            conn.execute(
                sql.SQL("UPDATE meta_relationships SET {col} = {tag} || id WHERE id = ANY(%s::text[])").format(
                    col=sql.Identifier(column[kind]), tag=sql.Literal(kind.replace("_", "-") + "-")),
                (special[kind],),
            )
    conn.execute("SELECT set_config('session_replication_role', %s, true)", (before,))


def seed_legacy(conn: psycopg.Connection, rows: int, *, seed: int = 0, types: int = 4,
                orphans: dict[str, int] | None = None, invalid_properties: int = 0, invalid_type_refs: int = 0,
                existing_items: int = 0, id_prefix: str = "r") -> dict[str, Any]:
    """Generate legacy Yuantus data: Parts/Documents in ``meta_items``, legacy types and ``rows`` relationships.

    ``rows`` is the total number of ``meta_relationships`` rows written; the special rows are distinct subsets of
    them: ``orphans`` (``{'missing_type': k, 'missing_source': k, 'missing_related': k}``), ``invalid_properties``
    (JSON string / array) and ``existing_items`` (ids that also exist in ``meta_items`` as unrelated items).
    ``invalid_type_refs`` adds that many extra legacy types (without rows) whose source or related ItemType does
    not exist. Ids are ``<id_prefix><zero-padded n>`` (same width, so text order = numeric order); parts and
    documents are ``part-<id_prefix>...`` / ``doc-<id_prefix>...``. Deterministic for a given ``seed``.
    Returns a summary including the expected preflight ``counts`` for the rows of this call.
    """
    orphans = {kind: int((orphans or {}).get(kind, 0)) for kind in ORPHAN_KINDS}
    if set(orphans) != set(ORPHAN_KINDS) or rows < 0 or types < 1:
        raise FixtureError("invalid seed_legacy arguments")
    started = time.monotonic()
    rng = random.Random(seed)
    width = max(7, len(str(rows)))
    parts, documents = max(10, rows // 4), max(5, rows // 20)
    pools = {"Part": (f"part-{id_prefix}", parts), "Document": (f"doc-{id_prefix}", documents)}
    specs, invalid_specs = legacy_type_specs(types), _invalid_type_specs(invalid_type_refs)
    mix = [rng.randrange(1, _MIX_MOD) for _step in range(10)]
    special = _split_special(rng, rows, id_prefix, width, dict(
        orphans, invalid_properties=invalid_properties, existing_items=existing_items))
    with conn.transaction():
        _insert_items(conn, "Part", pools["Part"][0], parts, width)
        _insert_items(conn, "Document", pools["Document"][0], documents, width)
        _insert_types(conn, [*specs, *invalid_specs])
        _insert_relationships(conn, rows, specs, pools, mix, id_prefix, width)
        _insert_existing_items(conn, special["existing_items"])
        _make_invalid_properties(conn, special["invalid_properties"])
        _make_orphans(conn, special)
    conn.execute("ANALYZE meta_items")
    conn.execute("ANALYZE meta_relationships")
    return _summary(rows, parts, documents, specs, invalid_specs, special, id_prefix, width,
                    time.monotonic() - started)


def _summary(rows: int, parts: int, documents: int, specs: Sequence[_TypeSpec], invalid_specs: Sequence[_TypeSpec],
             special: dict[str, list[str]], prefix: str, width: int, seconds: float) -> dict[str, Any]:
    """What :func:`seed_legacy` made, with the counts the preflight should report for these rows."""
    orphan_ids = {kind: special[kind] for kind in ORPHAN_KINDS}
    counts = {"total": rows, "existing_items": len(special["existing_items"]),
              **{kind: len(ids) for kind, ids in orphan_ids.items()},
              "orphans": sum(len(ids) for ids in orphan_ids.values()),
              "invalid_properties": len(special["invalid_properties"]),
              "invalid_type_refs": len(invalid_specs), "missing_created_by": 0}
    return {
        "rows": rows, "parts": parts, "documents": documents, "id_prefix": prefix, "id_width": width,
        "first_id": f"{prefix}{1:0{width}d}" if rows else None,
        "last_id": f"{prefix}{rows:0{width}d}" if rows else None,
        "types": {s.type_id: s.name for s in specs},
        "invalid_ref_types": {s.type_id: s.name for s in invalid_specs},
        "orphan_ids": orphan_ids, "invalid_property_ids": special["invalid_properties"],
        "existing_item_ids": special["existing_items"], "counts": counts, "seconds": round(seconds, 3),
    }


def add_item_file(conn: psycopg.Connection, item_id: str, file_id: str | None = None) -> str:
    """Make a row that references ``meta_items(item_id)`` (``meta_item_files``), as an application would.

    Works on the minimal and the full schema. Returns the ``meta_item_files`` id.
    """
    file_id = file_id or f"file-{uuid.uuid4()}"
    link_id = f"link-{uuid.uuid4()}"
    with conn.transaction():
        conn.execute("INSERT INTO meta_files (id, filename, system_path) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (file_id, f"{file_id}.pdf", f"/vault/{file_id}.pdf"))
        conn.execute("INSERT INTO meta_item_files (id, item_id, file_id, file_role) VALUES (%s, %s, %s, %s)",
                     (link_id, item_id, file_id, "attachment"))
    return link_id


# -- checksums -----------------------------------------------------------------------------------------------------
def _table_names(conn: psycopg.Connection) -> list[str]:
    """All base tables of ``public`` (bare names) and ``relmigrate`` (qualified names)."""
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema IN ('public', 'relmigrate') ORDER BY 1, 2"
    ).fetchall()
    return [name if schema == "public" else f"{schema}.{name}" for schema, name in rows]


def _table_ident(name: str) -> sql.Composable:
    """``schema.table`` or ``table`` (public) as a quoted identifier."""
    schema, _dot, table = name.rpartition(".")
    return sql.Identifier(schema or "public", table)


def table_checksums(conn: psycopg.Connection, tables: Sequence[str] | None = None) -> dict[str, str]:
    """md5 fingerprint of each table's content, independent of physical row order.

    Default: every table of ``public`` plus the ``relmigrate`` schema when present. Keys are the table names
    (``relmigrate.<table>`` for the ledger). Equal fingerprints mean equal multisets of rows (row text).
    """
    out: dict[str, str] = {}
    for name in tables if tables is not None else _table_names(conn):
        query = sql.SQL(
            "SELECT md5(count(*)::text || ':' || coalesce(string_agg(h, '' ORDER BY h), '')) "
            "FROM (SELECT md5(t::text) AS h FROM {} AS t) AS s"
        ).format(_table_ident(name))
        out[name] = conn.execute(query).fetchone()[0]
    return out


# -- demo ----------------------------------------------------------------------------------------------------------
DEMO_TENANTS: tuple[dict[str, Any], ...] = (
    {"tenant_id": "tenant-1", "name": "Tenant 1", "orgs": (("org-1", "Org 1"), ("org-2", "Org 2"))},
    # auth_organizations.id is global: tenant-2's "org 1" needs its own id (and name).
    {"tenant_id": "tenant-2", "name": "Tenant 2", "orgs": (("t2-org-1", "Tenant 2 Org 1"),)},
)
DEMO_ORPHANS = {"missing_type": 2, "missing_source": 3, "missing_related": 1}


def scope_database_name(tenant_id: str, org_id: str, prefix: str = DB_PREFIX) -> str:
    """``<prefix>__<tenant>__<org>``, the db-per-tenant-org database of a scope (ids already sanitised)."""
    return f"{prefix}__{tenant_id}__{org_id}"


def _create_identity(cluster: Any, tenants: Sequence[dict[str, Any]], name: str, kind: str) -> None:
    """(Re)create the identity database with the demo tenants and organisations."""
    cluster.drop_database(name)
    cluster.create_database(name)
    with cluster.connect(name) as conn:
        load_identity_schema(conn, kind)
        with conn.transaction():
            for tenant in tenants:
                conn.execute("INSERT INTO auth_tenants (id, name, is_active, created_at) "
                             "VALUES (%s, %s, true, now())", (tenant["tenant_id"], tenant["name"]))
                for org_id, org_name in tenant["orgs"]:
                    conn.execute("INSERT INTO auth_organizations (id, tenant_id, name, is_active, created_at) "
                                 "VALUES (%s, %s, %s, true, now())", (org_id, tenant["tenant_id"], org_name))


def _iter_scopes(tenants: Sequence[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(tenant_id, org_id) of every demo scope."""
    for tenant in tenants:
        for org_id, _name in tenant["orgs"]:
            yield tenant["tenant_id"], org_id


def create_demo(cluster: Any, *, rows: int = 2000, seed: int = 0, kind: str = "minimal",
                tenants: Sequence[dict[str, Any]] = DEMO_TENANTS, orphan_tenant: str = "tenant-2",
                orphans: dict[str, int] | None = None, identity_db: str = IDENTITY_DB,
                db_prefix: str = DB_PREFIX) -> list[dict[str, Any]]:
    """Build the demo: identity database plus one seeded database per (tenant, org); ``orphan_tenant``'s scopes
    get orphans. Existing demo databases are replaced. Returns one dict per scope (no passwords)."""
    _create_identity(cluster, tenants, identity_db, kind)
    scopes: list[dict[str, Any]] = []
    for number, (tenant_id, org_id) in enumerate(_iter_scopes(tenants)):
        db = create_scope_database(cluster, scope_database_name(tenant_id, org_id, db_prefix), kind,
                                   replace=True)
        scope_orphans = (orphans or DEMO_ORPHANS) if tenant_id == orphan_tenant else None
        with db.connect() as conn:
            summary = seed_legacy(conn, rows, seed=seed + number, orphans=scope_orphans)
        scopes.append({"tenant_id": tenant_id, "org_id": org_id, "database": db.name,
                       "counts": summary["counts"]})
    return scopes


# -- CLI -----------------------------------------------------------------------------------------------------------
def _load_cluster(cluster_dir: Path) -> Any:
    """Attach to a sandbox cluster started by ``tools/pgsandbox.py start --dir``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pgsandbox import (
        Cluster,  # tools/ is not a package: import after the path is set
    )

    return Cluster.load(cluster_dir)


def _cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    """``demo``: build the demo databases; print the scopes and URL templates (no password)."""
    cluster = _load_cluster(args.cluster_dir)
    scopes = create_demo(cluster, rows=args.rows, seed=args.seed, kind=args.schema)
    base = f"postgresql+psycopg://{cluster.superuser}@{cluster.host}:{cluster.port}"
    return {"scopes": scopes, "identity_database": IDENTITY_DB,
            "database_url_template": f"{base}/{DB_PREFIX}__{{tenant_id}}__{{org_id}}",
            "password_file": str(cluster.password_file)}


def _cmd_seed(args: argparse.Namespace) -> dict[str, Any]:
    """``seed``: optionally load a schema, then seed legacy rows into one database."""
    if args.dsn:
        dsn = args.dsn
    elif args.cluster_dir and args.dbname:
        dsn = _load_cluster(args.cluster_dir).dsn(args.dbname)
    else:
        raise FixtureError("give --dsn, or --cluster-dir and --dbname")
    with psycopg.connect(dsn, autocommit=True) as conn:
        if args.load_schema:
            load_schema(conn, args.load_schema)
        orphans = {"missing_type": args.missing_type, "missing_source": args.missing_source,
                   "missing_related": args.missing_related}
        summary = seed_legacy(conn, args.rows, seed=args.seed, types=args.types, orphans=orphans,
                              invalid_properties=args.invalid_properties,
                              invalid_type_refs=args.invalid_type_refs, existing_items=args.existing_items,
                              id_prefix=args.id_prefix)
    for key in ("orphan_ids", "invalid_property_ids", "existing_item_ids"):
        summary.pop(key)
    return summary


def _parser() -> argparse.ArgumentParser:
    """Argument parser of the CLI."""
    parser = argparse.ArgumentParser(description="Yuantus-compatible test databases and legacy data.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="identity + db-per-tenant-org demo databases on a sandbox cluster")
    demo.add_argument("--cluster-dir", type=Path, required=True)
    demo.add_argument("--rows", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--schema", choices=SCHEMA_KINDS, default="minimal")
    seed = sub.add_parser("seed", help="seed legacy relationships into one database")
    seed.add_argument("--dsn", help="libpq conninfo or URI (prefer --cluster-dir/--dbname: no password in argv)")
    seed.add_argument("--cluster-dir", type=Path)
    seed.add_argument("--dbname")
    seed.add_argument("--rows", type=int, required=True)
    seed.add_argument("--load-schema", choices=SCHEMA_KINDS, default=None)
    for name, default in (("seed", 0), ("types", 4), ("missing-type", 0), ("missing-source", 0),
                          ("missing-related", 0), ("invalid-properties", 0), ("invalid-type-refs", 0),
                          ("existing-items", 0)):
        seed.add_argument(f"--{name}", type=int, default=default)
    seed.add_argument("--id-prefix", default="r")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    args = _parser().parse_args(argv)
    try:
        result = _cmd_demo(args) if args.command == "demo" else _cmd_seed(args)
    except (FixtureError, psycopg.Error) as err:
        print(f"yuantus_fixture: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
