"""``state: absent``: the runbook's rollback-by-delete, done safely (only ledger rows, refuse when referenced)."""

from __future__ import annotations

from relmig_support import Ansible, failed, item_rows, ledger, ok, scalar
from yuantus_fixture import ScopeDatabase, add_item_file, seed_legacy, table_checksums


def test_absent_deletes_only_ledger_rows(scope_db: ScopeDatabase, ansible: Ansible) -> None:
    url = scope_db.url
    with scope_db.connect() as conn:
        seed = seed_legacy(conn, 200, seed=11, existing_items=3)
        preexisting = seed["existing_item_ids"]
        items_before = table_checksums(conn, ["meta_items"])
        preexisting_rows = item_rows(conn, preexisting)

        nothing = ok(ansible.migrate(url, state="absent"))
        assert nothing["changed"] is False and nothing["runs"] == [] and nothing["deleted"] == 0

        run_id = ok(ansible.migrate(url, batch_size=50, run_id="run-absent-1"))["run_id"]
        assert run_id == "run-absent-1"
        migrated = sorted(set(seed_ids(conn)) - set(preexisting))

        # check mode: reports what it would delete, writes nothing (ledger included)
        sums = table_checksums(conn)
        check = ok(ansible.migrate(url, state="absent", _check=True))
        assert check["changed"] is True and check["runs"] == [run_id]
        assert check["deleted"] == 197 and check["would_delete"] == 197
        assert table_checksums(conn) == sums

        # an application row references a migrated item: refuse, naming the table, delete nothing
        link = add_item_file(conn, migrated[5])
        sums = table_checksums(conn)
        for check_mode in (True, False):
            refused = failed(ansible.migrate(url, state="absent", _check=check_mode))
            assert "meta_item_files.item_id (1 rows)" in refused["msg"] and "Nothing was deleted" in refused["msg"]
            assert refused["referenced_by"] == ["meta_item_files.item_id (1 rows)"]
            assert table_checksums(conn) == sums
        conn.execute("DELETE FROM meta_item_files WHERE id = %s", (link,))

        # an unknown run id is a clear error
        unknown = failed(ansible.migrate(url, state="absent", run_id="no-such-run"))
        assert "run 'no-such-run' is not in this database's ledger" in unknown["msg"]

        result = ok(ansible.migrate(url, state="absent", run_id=run_id))
        assert result["changed"] is True and result["deleted"] == 197 and result["runs"] == [run_id]
        assert table_checksums(conn, ["meta_items"]) == items_before      # pre-existing same-id rows untouched
        assert item_rows(conn, preexisting) == preexisting_rows
        [run] = ledger(conn)
        assert run["status"] == "rolled_back" and run["rolled_back_at"] is not None
        assert run["rolled_back_by"] == "yuantus.relmigrate"

        again = ok(ansible.migrate(url, state="absent"))
        assert again["changed"] is False and again["runs"] == [] and again["deleted"] == 0

        # after a rollback the migration can run again, completely
        redo = ok(ansible.migrate(url))
        assert redo["migrated"] == 197 and redo["pending_after"] == 0
        assert scalar(conn, "SELECT count(*) FROM meta_items WHERE id = ANY(%s)", (migrated,)) == 197


def seed_ids(conn) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id FROM meta_relationships")]


def test_absent_refuses_when_a_new_item_references_a_migrated_one(scope_db: ScopeDatabase, ansible: Ansible) -> None:
    """An application-created relationship item pointing at a migrated item (meta_items.source_id)."""
    url = scope_db.url
    with scope_db.connect() as conn:
        seed_legacy(conn, 30, seed=2)
        ok(ansible.migrate(url))
        target = scalar(conn, "SELECT min(id) FROM meta_relationships")
        conn.execute("INSERT INTO meta_items (id, item_type_id, config_id, source_id, related_id) "
                     "VALUES ('app-item', 'Part BOM', 'app-item', %s, %s)", (target, target))
        sums = table_checksums(conn)
        refused = failed(ansible.migrate(url, state="absent"))
        assert "meta_items.related_id (1 rows)" in refused["msg"]
        assert "meta_items.source_id (1 rows)" in refused["msg"]
        assert table_checksums(conn) == sums
