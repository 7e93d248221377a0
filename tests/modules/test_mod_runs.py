"""Runs of relationship_items / relationship_items_info on generated legacy data: check mode, diff, the gate,
orphans, progress, the ledger, content verification, skipped and broken scopes, and option errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from relmig_support import (
    INFO_MODULE,
    MODULE,
    Ansible,
    assert_items_mapped,
    break_created_by,
    checksums,
    expected_items,
    failed,
    ledger,
    ok,
    scalar,
)
from yuantus_fixture import ScopeDatabase, seed_legacy

GATE = ("missing_type", "missing_source", "missing_related", "missing_created_by", "invalid_type_refs",
        "invalid_properties")


def _no_ledger(conn) -> bool:
    return scalar(conn, "SELECT to_regnamespace('relmigrate') IS NULL")


def _diff_blocks(output: str) -> tuple[dict, dict]:
    """The before/after JSON the callback prints for ``--diff`` (``--- before`` / ``+++ after`` unified diff)."""
    before, after = [], []
    for line in output.splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith("-"):
            before.append(line[1:])
        elif line.startswith("+"):
            after.append(line[1:])
        elif line.startswith(" "):
            before.append(line[1:])
            after.append(line[1:])
    return before, after


def test_check_mode_diff_orphans_progress_and_ledger(scope_db: ScopeDatabase, ansible: Ansible,
                                                     tmp_path: Path) -> None:
    url = scope_db.url
    with scope_db.connect() as conn:
        seed = seed_legacy(conn, 600, seed=3, types=5, existing_items=5,
                           orphans={"missing_type": 1, "missing_source": 2, "missing_related": 1})
        special = {i for ids in seed["orphan_ids"].values() for i in ids} | set(seed["existing_item_ids"])
        created_by_orphan = min({row[0] for row in conn.execute("SELECT id FROM meta_relationships")} - special)
        break_created_by(conn, [created_by_orphan])
        orphans = sorted({i for ids in seed["orphan_ids"].values() for i in ids} | {created_by_orphan})
        assert len(orphans) == 5
        expected = expected_items(conn, exclude=set(seed["existing_item_ids"]) | set(orphans))
        sums = checksums(conn)

        info = ok(ansible.info(url))
        assert info["ready"] is False and info["changed"] is False
        assert info["gate_failures"] == ["missing_type=1", "missing_source=2", "missing_related=1",
                                         "missing_created_by=1"]
        counts = info["counts"]
        assert (counts["total"], counts["existing_items"], counts["pending"], counts["orphans"]) == (600, 5, 595, 5)
        assert counts["orphan_sample"] == orphans
        assert ok(ansible.info(url, allow_orphans=True))["ready"] is True

        # check mode: nothing written (not even the ledger), the diff says what the run will do
        check = ansible.migrate(url, allow_orphans=True, batch_size=100, _check=True, _diff=True)
        predicted = ok(check)
        assert checksums(conn) == sums and _no_ledger(conn)
        assert predicted["changed"] is True and predicted["migrated"] == 590
        before, after = _diff_blocks(check.output)
        assert any('"pending": 595' in line for line in before), check.output
        assert any('"pending": 5' in line for line in after), check.output
        assert any('"migrated_items": 5' in line for line in before)
        assert any('"migrated_items": 595' in line for line in after)
        assert any('"Document Link"' in line for line in after)          # an ItemType to be created

        log = tmp_path / "progress.log"
        result = ok(ansible.migrate(url, allow_orphans=True, batch_size=100, progress_log=str(log)))
        for key in ("changed", "migrated", "item_types_created", "item_types_updated", "pending_after",
                    "skipped_orphans", "orphan_sample", "total", "existing_items_before", "pending_before"):
            assert predicted[key] == result[key], key
        assert (result["migrated"], result["skipped_orphans"], result["pending_after"]) == (590, 5, 5)
        assert result["orphan_sample"] == orphans
        assert_items_mapped(conn, expected)
        assert scalar(conn, "SELECT count(*) FROM meta_items WHERE id = ANY(%s)", (orphans,)) == 0
        assert checksums(conn)["meta_relationships"] == sums["meta_relationships"]

        # progress: one line per batch; the ledger's run row shows the rows done
        batches = math.ceil(600 / 100)
        lines = log.read_text().splitlines()
        assert len(lines) == batches == result["batches"]
        for number, line in enumerate(lines, 1):
            assert f"run={result['run_id']}" in line and f"database={scope_db.name}" in line
            assert re.search(rf"\bbatch={number}\b", line), line
        assert "migrated=590/590" in lines[-1]
        [run] = ledger(conn)
        assert (run["status"], run["migrated"], run["batches"], run["skipped_orphans"]) == (
            "completed", 590, batches, 5)
        assert run["finished_at"] is not None and run["eta_s"] == 0
        assert run["parameters"]["batch_size"] == 100 and run["parameters"]["allow_orphans"] is True
        assert scalar(conn, "SELECT count(*) FROM relmigrate.run_batches") == batches
        assert scalar(conn, "SELECT sum(cardinality(item_ids)) FROM relmigrate.run_batches") == 590

        # the orphans are still pending: without allow_orphans the gate fails again, before any write
        sums = checksums(conn)
        gate = failed(ansible.migrate(url))
        assert "missing_source=2" in gate["msg"] and checksums(conn) == sums
        again = ok(ansible.migrate(url, allow_orphans=True))
        assert again["changed"] is False and again["migrated"] == 0 and checksums(conn) == sums

        # content verification: 0 mismatches, then a tampered migrated row is found
        verified = ok(ansible.info(url, allow_orphans=True, check_content=True))["verification"]
        assert verified == {"legacy_total": 600, "items_present": 595, "missing": 5, "written_by_ledger": 590,
                            "mismatched": 0, "mismatch_sample": []}
        victims = sorted(expected)[7:9]
        conn.execute("UPDATE meta_items SET state = 'Tampered' WHERE id = %s", (victims[0],))
        conn.execute("UPDATE meta_items SET properties = properties || '{\"x\": 1}' WHERE id = %s", (victims[1],))
        verified = ok(ansible.info(url, allow_orphans=True, check_content=True))["verification"]
        assert verified["mismatched"] == 2 and verified["mismatch_sample"] == victims


def test_gate_fails_before_any_write_with_every_count(scope_db: ScopeDatabase, ansible: Ansible) -> None:
    url = scope_db.url
    with scope_db.connect() as conn:
        seed = seed_legacy(conn, 300, seed=5, orphans={"missing_type": 1, "missing_source": 2, "missing_related": 3},
                           invalid_properties=4, invalid_type_refs=2, existing_items=2)
        special = {i for ids in seed["orphan_ids"].values() for i in ids} | set(seed["invalid_property_ids"])
        victim = next(row[0] for row in conn.execute("SELECT id FROM meta_relationships ORDER BY id")
                      if row[0] not in special and row[0] not in seed["existing_item_ids"])
        break_created_by(conn, [victim])
        want = {"missing_type": 1, "missing_source": 2, "missing_related": 3, "missing_created_by": 1,
                "invalid_type_refs": 2, "invalid_properties": 4}
        sums = checksums(conn)

        info = ok(ansible.info(url))
        assert info["ready"] is False
        assert info["gate_failures"] == [f"{name}={want[name]}" for name in GATE]
        assert {name: info["counts"][name] for name in GATE} == want
        assert sum(1 for t in info["types"] if t["invalid_refs"]) == 2

        for check in (True, False):
            result = failed(ansible.migrate(url, _check=check))
            for name, count in want.items():
                assert f"{name}={count}" in result["msg"], result["msg"]
            for name in ("total=300", "existing_items=2", "pending=298", "allow_orphans", "Missing Type 1"):
                assert name in result["msg"], result["msg"]
            assert {name: result["counts"][name] for name in GATE} == want
            assert checksums(conn) == sums and _no_ledger(conn)

        # allow_orphans skips orphans only: invalid properties and ItemType references still fail the gate
        result = failed(ansible.migrate(url, allow_orphans=True))
        assert result["msg"].startswith("dry-run gate failed (invalid_type_refs=2, invalid_properties=4)")
        assert checksums(conn) == sums and _no_ledger(conn)
        info = ok(ansible.info(url, allow_orphans=True))
        assert info["gate_failures"] == ["invalid_type_refs=2", "invalid_properties=4"]


def test_missing_legacy_table_is_skipped(scope_db: ScopeDatabase, ansible: Ansible, tmp_path: Path) -> None:
    with scope_db.connect() as conn:
        conn.execute("DROP TABLE meta_relationships")
        sums = checksums_without_legacy(conn)
    # ``skipped: true`` makes Ansible show the task as skipped; a playbook registers the whole result
    run = ansible.playbook(MODULE, {"database_url": scope_db.url}, tmp_path)
    result = run.result
    assert run.rc == 0 and not result.get("failed"), run.output
    assert result["skipped"] is True and result["skip_reason"] == "legacy table missing"
    assert result["changed"] is False and result["migrated"] == 0
    info = ansible.playbook(INFO_MODULE, {"database_url": scope_db.url}, tmp_path).result
    assert info["skipped"] is True and info["skip_reason"] == "legacy table missing" and info["ready"] is True
    assert info["tables"]["meta_relationships"] is False
    with scope_db.connect() as conn:
        assert checksums_without_legacy(conn) == sums and _no_ledger(conn)


def checksums_without_legacy(conn) -> dict[str, str]:
    return {k: scalar(conn, f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {k} t")
            for k in ("meta_items", "meta_item_types", "meta_relationship_types")}


@pytest.mark.parametrize("table", ["meta_items", "meta_item_types"])
def test_missing_target_table_is_a_clear_error(scope_db: ScopeDatabase, ansible: Ansible, table: str) -> None:
    with scope_db.connect() as conn:
        seed_legacy(conn, 20)
        conn.execute(f"DROP TABLE {table} CASCADE")
    for run in (ansible.migrate(scope_db.url), ansible.info(scope_db.url)):
        result = failed(run)
        assert f"lacks table(s) {table} in schema public" in result["msg"], result["msg"]
        assert result["database"] == scope_db.name
    with scope_db.connect() as conn:
        assert _no_ledger(conn)


@pytest.mark.parametrize(("args", "message"), [
    ({"batch_size": 0}, "batch_size must be a positive number of rows, got 0"),
    ({"batch_size": -1}, "batch_size must be a positive number of rows, got -1"),
    ({"lock_wait": -1}, "lock_wait must be 0 or more seconds, got -1"),
    ({"state": "gone"}, "value of state must be one of: present, absent"),
    ({"tenancy_mode": "db-per-tenant"}, "tenancy_mode db-per-tenant needs database_url_template"),
])
def test_option_errors(scope_db: ScopeDatabase, ansible: Ansible, args: dict, message: str) -> None:
    result = failed(ansible.migrate(scope_db.url, **args))
    assert message in result["msg"]
    with scope_db.connect() as conn:
        assert _no_ledger(conn)


def test_results_never_hold_the_url(scope_db: ScopeDatabase, ansible: Ansible) -> None:
    with scope_db.connect() as conn:
        seed_legacy(conn, 10)
    run = ansible.migrate(scope_db.url)
    ok(run)
    password = scope_db.cluster.password
    assert password not in run.output and password not in json.dumps(run.result)
    assert run.result["scope"] == {"host": "127.0.0.1", "port": scope_db.cluster.port, "database": scope_db.name,
                                   "user": "postgres", "tenancy_mode": "single"}
