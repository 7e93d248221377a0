"""Every row of MAPPING.md's two tables, through ``ansible localhost -m``, on the minimal and the real schema."""

from __future__ import annotations

from decimal import Decimal

from relmig_support import (
    BIG_NUMBER,
    PREEXISTING,
    UNICODE_PROPS,
    Ansible,
    assert_item_type_created,
    assert_items_mapped,
    checksums,
    craft_legacy,
    expected_items,
    item_rows,
    item_type_rows,
    ledger,
    ok,
    scalar,
)
from yuantus_fixture import ScopeDatabase

CREATED = ["Custom Link", "Doc Link", "lt-c"]          # legacy-type id order: lt-a, lt-b, lt-c
UPDATED = ["Partial Type", "Bare Type"]                # lt-e, lt-f


def test_every_mapping_row(any_scope_db: ScopeDatabase, ansible: Ansible) -> None:
    url = any_scope_db.url
    with any_scope_db.connect() as conn:
        craft_legacy(conn)
        expected = expected_items(conn, exclude=PREEXISTING)
        items_before = item_rows(conn, [row[0] for row in conn.execute("SELECT id FROM meta_items")])
        types_before = item_type_rows(conn)
        sums_before = checksums(conn)

        predicted = ok(ansible.migrate(url, _check=True))
        assert checksums(conn) == sums_before
        assert scalar(conn, "SELECT to_regnamespace('relmigrate') IS NULL"), "check mode created the ledger"

        started = scalar(conn, "SELECT clock_timestamp()")
        result = ok(ansible.migrate(url))
        finished = scalar(conn, "SELECT clock_timestamp()")

        assert result["changed"] is True
        assert (result["total"], result["existing_items_before"], result["pending_before"], result["migrated"],
                result["pending_after"], result["skipped_orphans"]) == (9, 1, 8, 8, 0, 0)
        assert result["item_types_created"] == CREATED and result["item_types_updated"] == UPDATED
        for key in ("migrated", "item_types_created", "item_types_updated", "pending_after", "skipped_orphans",
                    "orphan_sample", "total", "existing_items_before", "pending_before", "counts"):
            assert predicted[key] == result[key], key
        assert predicted["changed"] is True

        # step 3, column by column; created_at is the database default (the time of the batch's transaction)
        assert set(expected) == {f"r0{n}" for n in range(1, 9)}
        assert_items_mapped(conn, expected, window=(started, finished))
        assert expected["r01"]["properties"] == {"sort_order": 10} and expected["r01"]["state"] == "Active"
        assert expected["r02"]["properties"] == {"sort_order": 20} and expected["r02"]["state"] == "Active"
        assert expected["r02"]["permission_id"] is None and expected["r01"]["permission_id"] == "Default"
        assert expected["r03"]["properties"] == {"sort_order": 99, "a": 1}
        assert expected["r04"]["properties"] == {**UNICODE_PROPS, "sort_order": 40}
        assert expected["r05"]["item_type_id"] == "lt-c"
        assert expected["r07"]["properties"]["sort_order"] is None     # present (as JSON null): kept
        assert scalar(conn, "SELECT properties->>'qty' FROM meta_items WHERE id = 'r05'") == BIG_NUMBER
        assert item_rows(conn, ["r05"])["r05"]["properties"]["qty"] == Decimal(BIG_NUMBER)
        assert scalar(conn, "SELECT properties->'ref' = 'null'::jsonb FROM meta_items WHERE id = 'r05'")

        # rows that existed before are never modified, the legacy tables never written
        assert item_rows(conn, list(items_before)) == items_before
        after = checksums(conn)
        assert after["meta_relationships"] == sums_before["meta_relationships"]
        assert after["meta_relationship_types"] == sums_before["meta_relationship_types"]

        # step 2: created ItemTypes, and missing fields filled in on existing ones (nothing else)
        types = item_type_rows(conn)
        assert set(types) == set(types_before) | set(CREATED)
        assert_item_type_created(types["Custom Link"], "Custom Link", "Custom Label", "Part", "Part")
        assert_item_type_created(types["Doc Link"], "Doc Link", "Doc Link", "Part", "Document")
        assert_item_type_created(types["lt-c"], "lt-c", "lt-c", "Document", "Part")
        assert len({types[name]["uuid"] for name in CREATED}) == 3
        assert types["Partial Type"] == {**types_before["Partial Type"], "is_relationship": "true",
                                         "related_item_type_id": "Document"}   # source was set: kept
        assert types["Bare Type"] == {**types_before["Bare Type"], "is_relationship": "true",
                                      "source_item_type_id": "Part", "related_item_type_id": "Part"}
        for name in ("Part", "Document", "Part BOM"):
            assert types[name] == types_before[name]

        # ledger
        [run] = ledger(conn)
        assert (run["run_id"], run["status"], run["migrated"], run["total"], run["pending_before"]) == (
            result["run_id"], "completed", 8, 9, 8)
        assert run["item_types_created"] == CREATED and run["item_types_updated"] == UPDATED

        # a second run changes nothing and writes nothing
        sums = checksums(conn)
        again = ok(ansible.migrate(url))
        assert again["changed"] is False and again["migrated"] == 0 and again["batches"] == 0
        assert again["item_types_created"] == [] and again["item_types_updated"] == []
        assert (again["pending_before"], again["pending_after"], again["existing_items_before"]) == (0, 0, 9)
        assert checksums(conn) == sums
        assert len(ledger(conn)) == 1


def test_update_item_types_off_then_on(any_scope_db: ScopeDatabase, ansible: Ansible) -> None:
    url = any_scope_db.url
    with any_scope_db.connect() as conn:
        craft_legacy(conn)
        expected = expected_items(conn, exclude=PREEXISTING)
        types_before = item_type_rows(conn)

        info = ok(ansible.info(url, update_item_types=False))
        assert [t["item_type_id"] for t in info["types"] if t["would_update"]] == []
        assert [t["item_type_id"] for t in info["types"] if t["would_create"]] == CREATED

        result = ok(ansible.migrate(url, update_item_types=False))
        assert result["migrated"] == 8 and result["item_types_created"] == CREATED
        assert result["item_types_updated"] == []
        types = item_type_rows(conn)
        for name in ("Partial Type", "Bare Type", "Part", "Document", "Part BOM"):
            assert types[name] == types_before[name]
        assert_items_mapped(conn, expected)          # rows still point at the (unchanged) ItemTypes

        info = ok(ansible.info(url))
        assert [t["item_type_id"] for t in info["types"] if t["would_update"]] == UPDATED

        sums = checksums(conn)
        result = ok(ansible.migrate(url, update_item_types=True))
        assert result["changed"] is True and result["migrated"] == 0
        assert result["item_types_created"] == [] and result["item_types_updated"] == UPDATED
        after = checksums(conn)
        assert {k for k in sums if sums[k] != after[k]} == {"meta_item_types"}
        types = item_type_rows(conn)
        assert types["Partial Type"] == {**types_before["Partial Type"], "is_relationship": "true",
                                         "related_item_type_id": "Document"}
        assert types["Bare Type"]["source_item_type_id"] == "Part"
        changes = conn.execute("SELECT item_type_id, action, before FROM relmigrate.item_type_changes "
                               "WHERE run_id = %s ORDER BY item_type_id", (result["run_id"],)).fetchall()
        assert changes == [
            ("Bare Type", "updated", {"is_relationship": None, "source_item_type_id": None,
                                      "related_item_type_id": None}),
            ("Partial Type", "updated", {"is_relationship": False, "source_item_type_id": "Document",
                                         "related_item_type_id": None}),
        ]
