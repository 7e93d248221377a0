"""plugins/module_utils/migration.py called directly with a psycopg connection (fast, no Ansible in between)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from ansible_collections.yuantus.relmigrate.plugins.module_utils import migration
from ansible_collections.yuantus.relmigrate.plugins.module_utils.migration import MigrationError
from pgsandbox import Cluster
from relmig_support import (
    Ansible,
    assert_items_mapped,
    break_created_by,
    checksums,
    expected_items,
    ledger,
    mapped_snapshot,
    ok,
    scalar,
)
from yuantus_fixture import ScopeDatabase, add_item_file, create_scope_database, seed_legacy

GATE = migration.GATE_COUNTS


@pytest.fixture
def other_db(pg_cluster: Cluster) -> Iterator[ScopeDatabase]:
    db = create_scope_database(pg_cluster, f"t_other_{uuid.uuid4().hex[:10]}", "minimal")
    try:
        yield db
    finally:
        db.drop()


def _analyse(conn: psycopg.Connection, allow_orphans: bool = False, update_item_types: bool = True) -> dict:
    with conn.cursor() as cur:
        return migration.analyse(cur, update_item_types, allow_orphans)


@pytest.mark.parametrize("count", GATE)
def test_each_gate_count_alone(scope_db: ScopeDatabase, count: str) -> None:
    with scope_db.connect() as conn:
        kwargs = {"missing_type": {"orphans": {"missing_type": 2}},
                  "missing_source": {"orphans": {"missing_source": 2}},
                  "missing_related": {"orphans": {"missing_related": 2}},
                  "invalid_type_refs": {"invalid_type_refs": 2},
                  "invalid_properties": {"invalid_properties": 2}}.get(count, {})
        seed_legacy(conn, 40, seed=4, **kwargs)
        if count == "missing_created_by":
            break_created_by(conn, [row[0] for row in conn.execute(
                "SELECT id FROM meta_relationships ORDER BY id LIMIT 2")])
        report = _analyse(conn)
        assert {name: report["counts"][name] for name in GATE} == {name: 2 if name == count else 0 for name in GATE}
        assert report["gate_failures"] == [f"{count}=2"]
        message = migration.gate_message(report)
        assert message.startswith(f"dry-run gate failed ({count}=2): ")
        for name in GATE:
            assert f"{name}={2 if name == count else 0}" in message
        assert "total=40" in message and "pending=40" in message

        allowed = _analyse(conn, allow_orphans=True)
        orphan = count in migration.ORPHAN_COUNTS
        assert allowed["gate_failures"] == ([] if orphan else [f"{count}=2"])
        assert allowed["counts"]["orphans"] == (2 if orphan else 0)
        assert len(allowed["counts"]["orphan_sample" if orphan else "invalid_sample"]) == (
            2 if orphan or count == "invalid_properties" else 0)


def test_plan_is_in_legacy_id_order_and_first_type_wins(scope_db: ScopeDatabase) -> None:
    """``name or id``: type 'b' (empty name) and type 'a' (named 'b') map to one ItemType; the first one creates it."""
    with scope_db.connect() as conn:
        conn.execute("INSERT INTO meta_relationship_types (id, name, label, source_item_type, related_item_type, "
                     "is_polymorphic, cascade_delete) VALUES ('b', '', 'from b', 'Part', 'Part', false, false), "
                     "('a', 'b', 'from a', 'Document', 'Document', false, false)")
        report = _analyse(conn)
        plan = report["plan"]
        assert [row["legacy_type_id"] for row in plan] == ["a", "b"]
        assert [(row["item_type_id"], row["would_create"], row["label"]) for row in plan] == [
            ("b", True, "from a"), ("b", False, "from b")]
        with conn.transaction(), conn.cursor() as cur:     # start_run works in the caller's transaction
            migration.ensure_ledger(cur)
            created, updated = migration.start_run(cur, "r1", {}, report["counts"], plan)
        assert (created, updated) == (["b"], [])
        assert scalar(conn, "SELECT source_item_type_id FROM meta_item_types WHERE id = 'b'") == "Document"


def test_advisory_lock(scope_db: ScopeDatabase) -> None:
    with scope_db.connect() as first, scope_db.connect() as second:
        migration.acquire_lock(first, 0)
        started = time.monotonic()
        with pytest.raises(MigrationError, match=r"another migration holds the lock on this database .* waited 0s"):
            migration.acquire_lock(second, 0)
        assert time.monotonic() - started < 1
        started = time.monotonic()
        with pytest.raises(MigrationError, match="waited 1s"):
            migration.acquire_lock(second, 1)
        assert time.monotonic() - started >= 1
        migration.release_lock(first)
        migration.acquire_lock(second, 0)
        migration.release_lock(second)


def test_interrupted_direct_run_then_module_completes(scope_db: ScopeDatabase, other_db: ScopeDatabase,
                                                      ansible: Ansible) -> None:
    """Stop a run of the migration functions after two batches; the module then completes it exactly."""
    with scope_db.connect() as conn, other_db.connect() as clean:
        seed_legacy(conn, 150, seed=6, existing_items=2)
        seed_legacy(clean, 150, seed=6, existing_items=2)
        expected = expected_items(conn, exclude={row[0] for row in conn.execute(
            "SELECT id FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)")})
        with psycopg.connect(scope_db.dsn) as run:
            migration.acquire_lock(run, 0)
            report = _analyse(run)
            with run.cursor() as cur:
                migration.ensure_ledger(cur)
                migration.start_run(cur, "stopped", {}, report["counts"], report["plan"])
            run.commit()
            after = ""
            for number in (1, 2):
                with run.cursor() as cur:
                    after, written = migration.copy_batch(cur, "stopped", number, after, 25)
                    assert 0 < written <= 25
                run.commit()
            with run.cursor() as cur:              # a third batch, never committed
                migration.copy_batch(cur, "stopped", 3, after, 25)
        done = scalar(conn, "SELECT sum(cardinality(item_ids)) FROM relmigrate.run_batches")
        assert scalar(conn, "SELECT count(*) FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)") == (
            done + 2)
        result = ok(ansible.migrate(scope_db.url, batch_size=40))
        assert result["migrated"] == 148 - done and result["pending_after"] == 0
        statuses = {r["run_id"]: r["status"] for r in ledger(conn)}
        assert statuses == {"stopped": "interrupted", result["run_id"]: "completed"}
        assert_items_mapped(conn, expected)
        ok(ansible.migrate(other_db.url))
        assert mapped_snapshot(conn) == mapped_snapshot(clean)


def test_without_ledger(scope_db: ScopeDatabase) -> None:
    with scope_db.connect() as conn, conn.cursor() as cur:
        seed_legacy(conn, 5)
        assert migration.ledger_runs(cur) == [] and migration.runs_to_undo(cur, None) == []
        with pytest.raises(MigrationError, match="there is no ledger"):
            migration.runs_to_undo(cur, "x")
        verification = migration.verify_migrated(cur, migration.existing_tables(cur))
        assert verification == {"legacy_total": 5, "items_present": 0, "missing": 5, "written_by_ledger": 0,
                                "mismatched": 0, "mismatch_sample": []}
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", migration.new_run_id())
    assert migration.new_run_id() != migration.new_run_id()


def test_referencing_rows_on_every_schema(any_scope_db: ScopeDatabase) -> None:
    with any_scope_db.connect() as conn:
        seed_legacy(conn, 30, seed=1)
        report = _analyse(conn)
        with conn.transaction(), conn.cursor() as cur:
            migration.ensure_ledger(cur)
            migration.start_run(cur, "r", {}, report["counts"], report["plan"])
            assert migration.copy_batch(cur, "r", 1, "", 1000)[1] == 30
            assert migration.referencing_rows(cur, ["r"]) == []
            assert migration.count_written(cur, ["r"]) == 30
        first = scalar(conn, "SELECT min(id) FROM meta_relationships")
        add_item_file(conn, first)
        sums = checksums(conn)
        with conn.cursor() as cur:
            assert migration.referencing_rows(cur, ["r"]) == ["meta_item_files.item_id (1 rows)"]
        assert checksums(conn) == sums
