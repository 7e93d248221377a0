"""Tests of the shared database tooling: tools/pgsandbox.py and tools/yuantus_fixture.py."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from pgsandbox import Cluster
from yuantus_fixture import (
    ScopeDatabase,
    add_item_file,
    create_demo,
    seed_legacy,
    table_checksums,
)

REPO = Path(__file__).resolve().parent.parent

# The preflight counts as MAPPING.md defines them (only for these tests; the collection has its own SQL).
COUNT_SQL = {
    "total": "SELECT count(*) FROM meta_relationships",
    "existing_items": "SELECT count(*) FROM meta_relationships r WHERE EXISTS "
                      "(SELECT 1 FROM meta_items i WHERE i.id = r.id)",
    "missing_type": "SELECT count(*) FROM meta_relationships r WHERE NOT EXISTS "
                    "(SELECT 1 FROM meta_relationship_types t WHERE t.id = r.relationship_type_id)",
    "missing_source": "SELECT count(*) FROM meta_relationships r WHERE NOT EXISTS "
                      "(SELECT 1 FROM meta_items i WHERE i.id = r.source_id)",
    "missing_related": "SELECT count(*) FROM meta_relationships r WHERE NOT EXISTS "
                       "(SELECT 1 FROM meta_items i WHERE i.id = r.related_id)",
    "invalid_properties": "SELECT count(*) FROM meta_relationships "
                          "WHERE json_typeof(properties) NOT IN ('object', 'null')",
    "invalid_type_refs": "SELECT count(*) FROM meta_relationship_types t WHERE NOT EXISTS "
                         "(SELECT 1 FROM meta_item_types it WHERE it.id = t.source_item_type) OR NOT EXISTS "
                         "(SELECT 1 FROM meta_item_types it WHERE it.id = t.related_item_type)",
}


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {name: conn.execute(query).fetchone()[0] for name, query in COUNT_SQL.items()}


def test_cluster_is_local_fast_and_password_protected(pg_cluster: Cluster) -> None:
    with pg_cluster.connect() as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('listen_addresses', 'fsync', 'synchronous_commit', 'full_page_writes', 'password_encryption')"
        ).fetchall())
    assert settings == {"listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off",
                        "full_page_writes": "off", "password_encryption": "scram-sha-256"}
    hba = (pg_cluster.data_dir / "pg_hba.conf").read_text()
    host_lines = [line.split() for line in hba.splitlines() if line.startswith("host")]
    assert host_lines and all(line[-1] == "scram-sha-256" for line in host_lines)
    assert pg_cluster.password not in repr(pg_cluster)


def test_wrong_password_is_refused(pg_cluster: Cluster) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg_cluster.connect(password="not-the-password").close()


def test_create_role_login(pg_cluster: Cluster) -> None:
    pg_cluster.create_role("fixture_user", "s3cret-pw")
    with psycopg.connect(pg_cluster.dsn("postgres", user="fixture_user", password="s3cret-pw")) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "fixture_user"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_cluster.dsn("postgres", user="fixture_user", password="wrong")).close()


def test_scope_db_has_minimal_schema_and_seed(scope_db: ScopeDatabase) -> None:
    assert scope_db.url.startswith("postgresql+psycopg://postgres:") and scope_db.name in scope_db.url
    with scope_db.connect() as conn:
        types = {row[0] for row in conn.execute("SELECT id FROM meta_item_types")}
        assert {"Part", "Document", "Part BOM"} <= types
        assert conn.execute("SELECT username FROM rbac_users WHERE id = 1").fetchone()[0] == "admin"
        fks = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                           "AND conrelid = 'meta_relationships'::regclass").fetchone()[0]
        assert fks == 0
        assert conn.execute("SHOW search_path").fetchone()[0] == '"$user", public'


def test_seed_counts_exact(any_scope_db: ScopeDatabase) -> None:
    orphans = {"missing_type": 3, "missing_source": 4, "missing_related": 5}
    with any_scope_db.connect() as conn:
        summary = seed_legacy(conn, 1000, seed=7, types=6, orphans=orphans, invalid_properties=6,
                              invalid_type_refs=2, existing_items=8)
        counts = _counts(conn)
        assert counts == {k: summary["counts"][k] for k in COUNT_SQL}
        assert counts == {"total": 1000, "existing_items": 8, **orphans, "invalid_properties": 6,
                          "invalid_type_refs": 2}
        assert conn.execute("SELECT count(DISTINCT relationship_type_id) FROM meta_relationships "
                            "WHERE relationship_type_id NOT LIKE 'missing-%'").fetchone()[0] == 6
        ids = [row[0] for row in conn.execute("SELECT id FROM meta_relationships ORDER BY id")]
        assert ids[0] == "r0000001" and ids[-1] == "r0001000" and ids == [f"r{n:07d}" for n in range(1, 1001)]
        kinds = dict(conn.execute("SELECT coalesce(json_typeof(properties), 'sql null'), count(*) "
                                  "FROM meta_relationships GROUP BY 1").fetchall())
        assert {"sql null", "null", "object", "string", "array"} <= set(kinds)
        states = {row[0] for row in conn.execute("SELECT DISTINCT state FROM meta_relationships")}
        assert states == {None, "", "Released"}
        assert conn.execute("SELECT count(*) FROM meta_relationships "
                            "WHERE (properties::jsonb) ? 'sort_order'").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM meta_relationship_types WHERE label = ''").fetchone()[0] >= 1
        assert conn.execute("SELECT count(*) FROM meta_relationship_types WHERE name = ''").fetchone()[0] == 1


def test_seed_is_deterministic(pg_cluster: Cluster, scope_db: ScopeDatabase) -> None:
    from yuantus_fixture import create_scope_database

    other = create_scope_database(pg_cluster, scope_db.name + "_b")
    third = create_scope_database(pg_cluster, scope_db.name + "_c")
    legacy = ["meta_relationships", "meta_relationship_types"]
    try:
        sums = []
        for db, seed in ((scope_db, 3), (other, 3), (third, 4)):
            with db.connect() as conn:
                seed_legacy(conn, 300, seed=seed, orphans={"missing_source": 2})
                sums.append(table_checksums(conn, legacy))
        assert sums[0] == sums[1]
        assert sums[0]["meta_relationships"] != sums[2]["meta_relationships"]
    finally:
        other.drop()
        third.drop()


def test_checksums_change_when_a_row_changes(any_scope_db: ScopeDatabase) -> None:
    with any_scope_db.connect() as conn:
        seed_legacy(conn, 200)
        before = table_checksums(conn)
        assert before == table_checksums(conn)
        assert "meta_relationships" in before and "meta_items" in before
        conn.execute("UPDATE meta_relationships SET sort_order = sort_order + 1 WHERE id = 'r0000100'")
        after = table_checksums(conn)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"meta_relationships"}


def test_checksums_include_relmigrate_schema(scope_db: ScopeDatabase) -> None:
    with scope_db.connect() as conn:
        conn.execute("CREATE SCHEMA relmigrate; CREATE TABLE relmigrate.runs (run_id text primary key)")
        assert "relmigrate.runs" in table_checksums(conn)


def test_add_item_file_references_an_item(any_scope_db: ScopeDatabase) -> None:
    with any_scope_db.connect() as conn:
        summary = seed_legacy(conn, 50, existing_items=1)
        item_id = summary["existing_item_ids"][0]
        add_item_file(conn, item_id)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("DELETE FROM meta_items WHERE id = %s", (item_id,))


def test_demo(pg_cluster: Cluster) -> None:
    scopes = create_demo(pg_cluster, rows=300, identity_db="demo_identity_test", db_prefix="demo_test")
    try:
        assert [(s["tenant_id"], s["org_id"]) for s in scopes] == [
            ("tenant-1", "org-1"), ("tenant-1", "org-2"), ("tenant-2", "t2-org-1")]
        assert scopes[0]["database"] == "demo_test__tenant-1__org-1"
        assert [s["counts"]["orphans"] for s in scopes] == [0, 0, 6]
        with pg_cluster.connect("demo_identity_test") as conn:
            orgs = conn.execute("SELECT tenant_id, id FROM auth_organizations ORDER BY 1, 2").fetchall()
        assert orgs == [("tenant-1", "org-1"), ("tenant-1", "org-2"), ("tenant-2", "t2-org-1")]
        with pg_cluster.connect(scopes[2]["database"]) as conn:
            assert _counts(conn)["missing_source"] == 3
    finally:
        for name in ["demo_identity_test", *(s["database"] for s in scopes)]:
            pg_cluster.drop_database(name)


def test_cli_cluster_lifecycle(tmp_path: Path) -> None:
    cluster_dir = Path("/tmp") / f"pgsandbox-cli-{tmp_path.name}"  # pytest's tmp dirs are 0700: not for postgres
    tool = [sys.executable, str(REPO / "tools" / "pgsandbox.py")]
    started = subprocess.run([*tool, "start", "--dir", str(cluster_dir)], capture_output=True, text=True,
                             check=True)
    try:
        info_file = cluster_dir / "cluster.json"
        assert stat.S_IMODE(info_file.stat().st_mode) == 0o600
        info = json.loads(info_file.read_text())
        password = Path(info["password_file"]).read_text().strip()
        assert password not in started.stdout + started.stderr + info_file.read_text()
        status = subprocess.run([*tool, "status", "--dir", str(cluster_dir)], capture_output=True, text=True,
                                check=False)
        assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
        assert password not in status.stdout
        cluster = Cluster.load(cluster_dir)
        cluster.shutdown()
        assert not cluster.is_running()
        cluster.start_server()
        cluster.restart()
        with cluster.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        subprocess.run([*tool, "stop", "--dir", str(cluster_dir)], capture_output=True, check=True)
    assert not cluster_dir.exists()


@pytest.mark.slow
def test_seed_100k_timing(scope_db: ScopeDatabase) -> None:
    with scope_db.connect() as conn:
        started = time.monotonic()
        summary = seed_legacy(conn, 100_000, orphans={"missing_related": 10})
        elapsed = time.monotonic() - started
        assert conn.execute("SELECT count(*) FROM meta_relationships").fetchone()[0] == 100_000
    print(f"\nseed_legacy: 100,000 rows in {elapsed:.2f} s ({100_000 / elapsed:,.0f} rows/s); "
          f"{summary['parts']} parts, {summary['documents']} documents")
