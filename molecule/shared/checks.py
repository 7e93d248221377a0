"""Assertions shared by the scenarios' verifiers (imported by molecule/<scenario>/tests/test_*.py)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

LEGACY_TABLES = ("meta_relationships", "meta_relationship_types")

# Every migrated row carries what MAPPING.md prescribes (the verify role checks all columns; this re-checks the
# structural ones independently, in SQL on the server).
MIGRATED_ROWS_SQL = """
SELECT count(*) FROM meta_items m JOIN meta_relationships r ON r.id = m.id
WHERE m.config_id = r.id AND m.generation = 1 AND m.is_current AND m.is_versionable
  AND m.source_id = r.source_id AND m.related_id = r.related_id
  AND m.state = coalesce(nullif(r.state, ''), 'Active')
  AND m.properties ? 'sort_order'
  AND m.item_type_id = (SELECT coalesce(nullif(t.name, ''), t.id) FROM meta_relationship_types t
                        WHERE t.id = r.relationship_type_id)
"""


def id_array(ids: Any) -> str:
    """A SQL text-array literal of generated ids (letters, digits and '-' only: no quoting needed)."""
    ids = list(ids)
    assert all(i.replace("-", "").isalnum() for i in ids), ids
    return "'{" + ",".join(ids) + "}'::text[]"


def assert_migrated(psql: Any, scenario: Any, database: str, skipped_orphans: int = 0) -> None:
    """Every legacy row that is not an orphan has its meta_items row; pre-existing rows are untouched."""
    db = scenario.database(database)
    total, existing = db["counts"]["total"], db["counts"]["existing_items"]
    assert int(psql.value(database, "SELECT count(*) FROM meta_relationships")) == total
    present = int(psql.value(database, "SELECT count(*) FROM meta_items WHERE id IN (SELECT id FROM meta_relationships)"))
    assert present == total - skipped_orphans
    assert int(psql.value(database, MIGRATED_ROWS_SQL)) == total - existing - skipped_orphans
    if db["existing_item_ids"]:
        untouched = psql.value(database, "SELECT count(*) FROM meta_items WHERE properties @> '{\"preexisting\": true}' "
                                         f"AND id = ANY({id_array(db['existing_item_ids'])})")
        assert int(untouched) == existing


def assert_tables_unchanged(fingerprint: Any, scenario: Any, database: str, tables: Any = None) -> None:
    """The given tables (default: the whole database, schemas included) are as prepare left them."""
    before, now = scenario.database(database)["before"], fingerprint(database)
    if tables is None:
        assert now == before, f"{database} changed"
        return
    for table in tables:
        assert now["tables"][table] == before["tables"][table], f"{database}.{table} changed"


def sha256(path: Path) -> str:
    """sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def assert_backup(host: Any, backup_dir: str, run_id: str, scope: str, database: str) -> dict[str, Any]:
    """The scope's backup of a run: 0700 directories, 0600 archive and manifest, manifest naming the database and
    the archive's real sha256 and size; ``host`` is where the role ran (testinfra). Returns the manifest."""
    run_dir = f"{backup_dir}/{run_id}"
    for directory in (backup_dir, run_dir):
        assert host.file(directory).is_directory
        assert host.file(directory).mode == 0o700, directory
    manifest_file = host.file(f"{run_dir}/{scope}.manifest.json")
    assert manifest_file.is_file and manifest_file.mode == 0o600
    manifest = json.loads(manifest_file.content_string)
    archive = host.file(f"{run_dir}/{scope}.dump")
    assert manifest["file"] == archive.path and manifest["format"] == "custom"
    assert archive.is_file and archive.mode == 0o600
    assert archive.sha256sum == manifest["sha256"]
    assert archive.size == int(manifest["size_bytes"]) > 0
    assert manifest["database"] == database and manifest["run_id"] == run_id
    listing = host.run("pg_restore --list %s", archive.path)
    assert listing.rc == 0 and "TABLE DATA public meta_relationships" in listing.stdout
    return manifest


def assert_no_secret(*paths: Path) -> None:
    """No file under these paths holds the servers' password."""
    secret = os.environ["RELMIGRATE_PG_PASSWORD"].encode()
    for root in paths:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file():
                assert secret not in path.read_bytes(), f"{path} holds the password"
