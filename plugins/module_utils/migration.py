# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQL of the Yuantus "Relationship -> Item" migration for one scope database.

Everything is set-based: the counts are one query, the item types one statement each way, the copy one
``INSERT ... SELECT`` per keyset batch. The column values are MAPPING.md's; ``ITEM_VALUES_SQL`` states them once and
both the copy and the verification use it, so what is written and what is checked cannot drift apart.

The ledger lives in the ``relmigrate`` schema of the scope's database and is written in the same transaction as
the rows it describes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import time
import uuid

try:
    from psycopg import sql
except ImportError:  # the modules report the missing driver through database.require_driver
    sql = None

LEGACY_TABLE = "meta_relationships"
TABLES = ("meta_relationships", "meta_relationship_types", "meta_items", "meta_item_types")
LEDGER_SCHEMA = "relmigrate"
# One advisory-lock key for the whole collection; advisory locks are per database, so this is a per-scope lock.
ADVISORY_LOCK_KEY = 7170120240531
GATE_COUNTS = ("missing_type", "missing_source", "missing_related", "missing_created_by",
               "invalid_type_refs", "invalid_properties")
ORPHAN_COUNTS = ("missing_type", "missing_source", "missing_related", "missing_created_by")
ORPHAN_SAMPLE_SIZE = 20

# The target ItemType id of a legacy type: Yuantus's ``name or id``.
ITEM_TYPE_ID_SQL = "COALESCE(NULLIF(t.name, ''), t.id)"

# The legacy rows (alias r) that a run would write: not yet in meta_items and not orphaned.
PENDING_SQL = "NOT EXISTS (SELECT 1 FROM public.meta_items m WHERE m.id = r.id)"
MIGRATABLE_JOIN_SQL = """
    JOIN public.meta_relationship_types t ON t.id = r.relationship_type_id
    JOIN public.meta_items src ON src.id = r.source_id
    WHERE EXISTS (SELECT 1 FROM public.meta_items rel WHERE rel.id = r.related_id)
      AND (r.created_by_id IS NULL OR EXISTS (SELECT 1 FROM public.rbac_users u WHERE u.id = r.created_by_id))
      AND (r.properties IS NULL OR json_typeof(r.properties::json) IN ('object', 'null'))
"""

# MAPPING.md step 3, column by column, for a legacy row r of type t whose source item is src.
ITEM_COLUMNS = ("id", "config_id", "item_type_id", "generation", "is_current", "is_versionable", "state",
                "source_id", "related_id", "properties", "created_by_id", "permission_id")
ITEM_VALUES_SQL = """
    r.id, r.id, {item_type_id}, 1, true, true, COALESCE(NULLIF(r.state, ''), 'Active'),
    r.source_id, r.related_id,
    CASE
        WHEN r.properties IS NULL OR json_typeof(r.properties::json) = 'null'
            THEN jsonb_build_object('sort_order', r.sort_order)
        WHEN r.properties::jsonb ? 'sort_order' THEN r.properties::jsonb
        ELSE r.properties::jsonb || jsonb_build_object('sort_order', r.sort_order)
    END,
    r.created_by_id, src.permission_id
""".format(item_type_id=ITEM_TYPE_ID_SQL)

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS relmigrate;
CREATE TABLE IF NOT EXISTS relmigrate.runs (
    run_id text PRIMARY KEY,
    status text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    parameters jsonb NOT NULL DEFAULT '{}',
    total bigint,
    pending_before bigint,
    migrated bigint NOT NULL DEFAULT 0,
    skipped_orphans bigint NOT NULL DEFAULT 0,
    batches integer NOT NULL DEFAULT 0,
    rows_per_second numeric,
    eta_s numeric,
    item_types_created text[] NOT NULL DEFAULT '{}',
    item_types_updated text[] NOT NULL DEFAULT '{}',
    error text,
    rolled_back_at timestamptz,
    rolled_back_by text
);
CREATE TABLE IF NOT EXISTS relmigrate.run_batches (
    run_id text NOT NULL REFERENCES relmigrate.runs (run_id),
    batch_no integer NOT NULL,
    last_legacy_id text NOT NULL,
    item_ids text[] NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, batch_no)
);
CREATE TABLE IF NOT EXISTS relmigrate.item_type_changes (
    run_id text NOT NULL REFERENCES relmigrate.runs (run_id),
    item_type_id text NOT NULL,
    action text NOT NULL,
    before jsonb,
    PRIMARY KEY (run_id, item_type_id)
);
"""


class MigrationError(Exception):
    """The migration cannot go on; the message says why and what to do. Nothing was half-written."""


# --- reading -------------------------------------------------------------------------------------------------


def existing_tables(cur):
    """Return ``{table: bool}`` for the four tables of the migration (schema ``public``)."""
    cur.execute(
        "SELECT name, to_regclass('public.' || name) IS NOT NULL FROM unnest(%s::text[]) AS name",
        (list(TABLES) + ["rbac_users"],),
    )
    return dict(cur.fetchall())


def require_target_tables(tables):
    """Raise ``MigrationError`` naming every missing table the migration needs besides the legacy table."""
    missing = [name for name in TABLES if name != LEGACY_TABLE and not tables.get(name)]
    if missing:
        raise MigrationError(
            "the scope's database lacks table(s) %s in schema public: is this a Yuantus database at the "
            "right schema version?" % ", ".join(missing)
        )


def _created_by_check(tables):
    if tables.get("rbac_users"):
        return "r.created_by_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM public.rbac_users u WHERE u.id = r.created_by_id)"
    return "false"


def row_counts(cur, tables):
    """Return the dry-run counts of MAPPING.md step 1 (gate counts over the rows a run would write)."""
    created_by_missing = _created_by_check(tables)
    cur.execute(
        """
        WITH pending AS (
            SELECT r.id,
                   t.id IS NULL AS missing_type,
                   NOT EXISTS (SELECT 1 FROM public.meta_items s WHERE s.id = r.source_id) AS missing_source,
                   NOT EXISTS (SELECT 1 FROM public.meta_items s WHERE s.id = r.related_id) AS missing_related,
                   ({created_by_missing}) AS missing_created_by,
                   (r.properties IS NOT NULL
                    AND json_typeof(r.properties::json) NOT IN ('object', 'null')) AS invalid_properties
            FROM public.meta_relationships r
            LEFT JOIN public.meta_relationship_types t ON t.id = r.relationship_type_id
            WHERE {pending}
        )
        SELECT (SELECT count(*) FROM public.meta_relationships) AS total,
               count(*) AS pending,
               count(*) FILTER (WHERE missing_type) AS missing_type,
               count(*) FILTER (WHERE missing_source) AS missing_source,
               count(*) FILTER (WHERE missing_related) AS missing_related,
               count(*) FILTER (WHERE missing_created_by) AS missing_created_by,
               count(*) FILTER (WHERE invalid_properties) AS invalid_properties,
               count(*) FILTER (WHERE missing_type OR missing_source OR missing_related
                                OR missing_created_by) AS orphans,
               (array_agg(id ORDER BY id) FILTER (WHERE missing_type OR missing_source OR missing_related
                                                  OR missing_created_by))[1:{sample}] AS orphan_sample,
               (array_agg(id ORDER BY id) FILTER (WHERE invalid_properties))[1:{sample}] AS invalid_sample
        FROM pending
        """.format(pending=PENDING_SQL, created_by_missing=created_by_missing,
                   sample=ORPHAN_SAMPLE_SIZE)
    )
    names = [column.name for column in cur.description]
    counts = dict(zip(names, cur.fetchone()))
    counts["orphan_sample"] = counts["orphan_sample"] or []
    counts["invalid_sample"] = counts["invalid_sample"] or []
    counts["existing_items"] = counts["total"] - counts["pending"]
    return counts


def item_type_plan(cur, update_item_types):
    """Return one entry per legacy type: its target ItemType and what step 2 would do to it.

    Types are in legacy-id order; when two legacy types map to one ItemType, the first one creates or fills it
    (what Yuantus's loop does, in that order).
    """
    cur.execute(
        """
        SELECT t.id AS legacy_type_id,
               {item_type_id} AS item_type_id,
               COALESCE(NULLIF(t.label, ''), NULLIF(t.name, ''), t.id) AS label,
               t.source_item_type, t.related_item_type,
               it.id IS NOT NULL AS item_type_exists,
               it.is_relationship, it.source_item_type_id, it.related_item_type_id,
               COALESCE(per_type.rows, 0) AS rows, COALESCE(per_type.pending, 0) AS pending
        FROM public.meta_relationship_types t
        LEFT JOIN public.meta_item_types it ON it.id = {item_type_id}
        LEFT JOIN (
            -- One pass over the legacy table for every type.
            SELECT r.relationship_type_id, count(*) AS rows, count(*) FILTER (WHERE {pending}) AS pending
            FROM public.meta_relationships r GROUP BY r.relationship_type_id
        ) per_type ON per_type.relationship_type_id = t.id
        ORDER BY t.id
        """.format(item_type_id=ITEM_TYPE_ID_SQL, pending=PENDING_SQL)
    )
    names = [column.name for column in cur.description]
    rows = [dict(zip(names, row)) for row in cur.fetchall()]
    cur.execute("SELECT id FROM public.meta_item_types")
    known_ids = set(row[0] for row in cur.fetchall())
    created = set(row["item_type_id"] for row in rows if not row["item_type_exists"])
    valid_refs = known_ids | created

    plan, seen = [], set()
    for row in rows:
        first = row["item_type_id"] not in seen
        seen.add(row["item_type_id"])
        row["would_create"] = first and not row["item_type_exists"]
        row["would_update"] = False
        row["changes"] = {}
        if row["would_create"]:
            row["changes"] = dict(source_item_type_id=row["source_item_type"],
                                  related_item_type_id=row["related_item_type"])
        elif first and update_item_types:
            row["changes"] = _fill_missing(row)
            row["would_update"] = bool(row["changes"])
        row["invalid_refs"] = sorted(
            "%s=%r" % (column, value) for column, value in row["changes"].items()
            if column != "is_relationship" and value not in valid_refs
        )
        plan.append(row)
    return plan


def _fill_missing(row):
    """The step-2 update of an existing ItemType: only what is missing, nothing else."""
    changes = {}
    if row["is_relationship"] is not True:
        changes["is_relationship"] = True
    for column, legacy in (("source_item_type_id", "source_item_type"), ("related_item_type_id", "related_item_type")):
        if not row[column] and row[legacy]:
            changes[column] = row[legacy]
    return changes


def public_type_entry(row):
    """Return the per-type breakdown entry the modules report."""
    return dict(
        legacy_type_id=row["legacy_type_id"],
        item_type_id=row["item_type_id"],
        rows=row["rows"],
        pending=row["pending"],
        item_type_exists=row["item_type_exists"],
        would_create=row["would_create"],
        would_update=row["would_update"],
        invalid_refs=row["invalid_refs"],
    )


def analyse(cur, update_item_types, allow_orphans):
    """Return the full dry-run report of a scope whose target tables exist.

    ``gate_failures`` lists one entry per non-zero gate count that this run would fail on (orphans are excluded
    when ``allow_orphans`` is set; invalid type references and invalid properties never are), and
    ``privileges`` when the connected role lacks one the run needs (``lacking`` names them), so a dry run
    catches it before any backup or write.
    """
    tables = existing_tables(cur)
    counts = row_counts(cur, tables)
    plan = item_type_plan(cur, update_item_types)
    counts["invalid_type_refs"] = sum(1 for row in plan if row["invalid_refs"])
    failures = []
    for name in GATE_COUNTS:
        if counts[name] and not (allow_orphans and name in ORPHAN_COUNTS):
            failures.append("%s=%d" % (name, counts[name]))
    lacking = missing_privileges(cur, plan)
    if lacking:
        failures.append("privileges")
    return dict(counts=counts, plan=plan, gate_failures=failures, tables=tables, lacking=lacking)


def gate_message(report):
    """The message of a failed gate: every count, and what the operator can do."""
    counts = report["counts"]
    details = ", ".join("%s=%s" % (name, counts[name]) for name in
                        ("total", "existing_items", "pending") + GATE_COUNTS)
    hints = []
    if report["lacking"]:
        hints.append(privileges_message(report["lacking"]))
    if any(counts[name] for name in ORPHAN_COUNTS):
        hints.append("orphan rows (first ids: %s) can be skipped with allow_orphans"
                     % ", ".join(counts["orphan_sample"]))
    if counts["invalid_properties"]:
        hints.append("rows with non-object properties must be fixed first (first ids: %s)"
                     % ", ".join(counts["invalid_sample"]))
    bad_types = ["%s -> %s" % (row["legacy_type_id"], "; ".join(row["invalid_refs"]))
                 for row in report["plan"] if row["invalid_refs"]]
    if bad_types:
        hints.append("legacy types name ItemTypes that do not exist: %s" % ", ".join(bad_types))
    return "dry-run gate failed (%s): %s. Counts: %s" % (
        ", ".join(report["gate_failures"]), "; ".join(hints), details)


def privileges_message(lacking):
    """The message for a role that lacks privileges the run needs."""
    return "the database role lacks %s; nothing was written" % ", ".join(lacking)


def server_facts(cur):
    """Return the server version and the database size, for backups and reports."""
    cur.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version'), "
        "pg_database_size(current_database()), current_database()"
    )
    version_num, version, size, name = cur.fetchone()
    return dict(server_version_num=version_num, server_version=version, database_size_bytes=size,
                database=name)


def ledger_runs(cur):
    """Return the runs recorded in the scope's ledger (empty when there is no ledger yet)."""
    cur.execute("SELECT to_regclass('relmigrate.runs') IS NOT NULL")
    if not cur.fetchone()[0]:
        return []
    cur.execute(
        """
        SELECT run_id, status, started_at, finished_at, migrated, skipped_orphans, batches, parameters,
               item_types_created, item_types_updated, rolled_back_at, rolled_back_by
        FROM relmigrate.runs ORDER BY started_at, run_id
        """
    )
    names = [column.name for column in cur.description]
    return [_jsonable(dict(zip(names, row))) for row in cur.fetchall()]


def _jsonable(record):
    for key, value in record.items():
        if isinstance(value, datetime.datetime):
            record[key] = value.isoformat()
    return record


def verify_migrated(cur, tables):
    """Compare every migrated row with what MAPPING.md prescribes, server-side.

    Returns ``legacy_total``, ``items_present`` (legacy ids present in meta_items), ``missing`` (legacy ids absent
    from meta_items), ``written_by_ledger`` and ``mismatched``: rows this collection wrote (per the ledger) whose
    mapped columns differ from the legacy row, with a sample of their ids.
    """
    cur.execute(
        """
        SELECT (SELECT count(*) FROM public.meta_relationships),
               (SELECT count(*) FROM public.meta_items m WHERE m.id IN (SELECT id FROM public.meta_relationships))
        """
    )
    legacy_total, items_present = cur.fetchone()
    result = dict(legacy_total=legacy_total, items_present=items_present, missing=legacy_total - items_present,
                  written_by_ledger=0, mismatched=0, mismatch_sample=[])
    cur.execute("SELECT to_regclass('relmigrate.run_batches') IS NOT NULL")
    if not cur.fetchone()[0]:
        return result
    columns = ", ".join("m.%s" % name for name in ITEM_COLUMNS)
    cur.execute(
        """
        WITH written AS (
            SELECT DISTINCT unnest(b.item_ids) AS id
            FROM relmigrate.run_batches b JOIN relmigrate.runs u USING (run_id)
            WHERE u.status <> 'rolled_back'
        ), compared AS (
            SELECT w.id, ROW({columns}) IS NOT DISTINCT FROM ROW({values}) AS same
            FROM written w
            JOIN public.meta_items m ON m.id = w.id
            LEFT JOIN public.meta_relationships r ON r.id = w.id
            LEFT JOIN public.meta_relationship_types t ON t.id = r.relationship_type_id
            LEFT JOIN public.meta_items src ON src.id = r.source_id
        )
        SELECT count(*), count(*) FILTER (WHERE NOT same),
               (array_agg(id ORDER BY id) FILTER (WHERE NOT same))[1:{sample}]
        FROM compared
        """.format(columns=columns, values=ITEM_VALUES_SQL, sample=ORPHAN_SAMPLE_SIZE)
    )
    written, mismatched, sample = cur.fetchone()
    result.update(written_by_ledger=written, mismatched=mismatched, mismatch_sample=sample or [])
    return result


# --- privileges and locking ----------------------------------------------------------------------------------


def missing_privileges(cur, plan):
    """Return the privileges the connected role lacks for a run with this plan (checked before any write)."""
    needed = [("public.meta_items", "INSERT"), ("public.meta_items", "SELECT"),
              ("public.meta_relationships", "SELECT"), ("public.meta_relationship_types", "SELECT"),
              ("public.meta_item_types", "SELECT")]
    if any(row["would_create"] for row in plan):
        needed.append(("public.meta_item_types", "INSERT"))
    if any(row["would_update"] for row in plan):
        needed.append(("public.meta_item_types", "UPDATE"))
    lacking = []
    for table, privilege in needed:
        cur.execute("SELECT has_table_privilege(%s, %s)", (table, privilege))
        if not cur.fetchone()[0]:
            lacking.append("%s on %s" % (privilege, table))
    cur.execute("SELECT to_regnamespace('relmigrate') IS NOT NULL")
    if cur.fetchone()[0]:
        cur.execute("SELECT has_schema_privilege('relmigrate', 'USAGE')")
        if not cur.fetchone()[0]:
            lacking.append("USAGE on schema relmigrate")
        else:
            cur.execute("SELECT to_regclass('relmigrate.runs') IS NOT NULL "
                        "AND NOT has_table_privilege('relmigrate.runs', 'INSERT')")
            if cur.fetchone()[0]:
                lacking.append("INSERT on relmigrate.runs")
    else:
        cur.execute("SELECT has_database_privilege(current_database(), 'CREATE')")
        if not cur.fetchone()[0]:
            lacking.append("CREATE on the database (for the relmigrate ledger schema)")
    return lacking


def acquire_lock(conn, wait_seconds):
    """Take the scope's migration lock (session level), waiting up to ``wait_seconds``.

    Raises ``MigrationError`` when another session holds it past the wait.
    """
    deadline = time.monotonic() + max(0, wait_seconds)
    while True:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            taken = cur.fetchone()[0]
        if not conn.autocommit:
            conn.commit()
        if taken:
            return
        if time.monotonic() >= deadline:
            raise MigrationError(
                "another migration holds the lock on this database (advisory lock %d); waited %ss (lock_wait). "
                "Wait for it to finish, or raise lock_wait." % (ADVISORY_LOCK_KEY, wait_seconds)
            )
        time.sleep(0.2)


def release_lock(conn):
    """Release the scope's migration lock (closing the connection also releases it)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    if not conn.autocommit:
        conn.commit()


# --- writing -------------------------------------------------------------------------------------------------


def new_run_id():
    """Return a run id that sorts by time: ``YYYYmmddTHHMMSSZ-<6 hex>``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return "%s-%s" % (now.strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4().hex[:6])


def ensure_ledger(cur):
    """Create the ledger schema and tables if missing (idempotent; call under the migration lock)."""
    cur.execute(LEDGER_DDL)


def start_run(cur, run_id, parameters, counts, plan):
    """Record the run as ``running`` and apply the item-type plan (MAPPING.md step 2), in the caller's transaction.

    Returns ``(created, updated)`` ItemType ids.
    """
    # The lock every batch's INSERT takes, taken first: when an application transaction holds a conflicting lock
    # on meta_items, the run fails here within lock_timeout, before anything (ItemTypes included) is written.
    cur.execute("LOCK TABLE public.meta_items IN ROW EXCLUSIVE MODE")
    # Under the migration lock no other run is alive: a run still marked running was killed.
    cur.execute("UPDATE relmigrate.runs SET status = 'interrupted', updated_at = clock_timestamp() "
                "WHERE status = 'running'")
    cur.execute("SELECT 1 FROM relmigrate.runs WHERE run_id = %s", (run_id,))
    if cur.fetchone():
        raise MigrationError("run_id %r is already recorded in this database's ledger; use a new run_id" % run_id)
    cur.execute(
        "INSERT INTO relmigrate.runs (run_id, status, parameters, total, pending_before) "
        "VALUES (%s, 'running', %s::jsonb, %s, %s)",
        (run_id, json.dumps(parameters, sort_keys=True), counts["total"], counts["pending"]),
    )
    created, updated = [], []
    for row in plan:
        if row["would_create"]:
            _create_item_type(cur, run_id, row)
            created.append(row["item_type_id"])
        elif row["would_update"]:
            _update_item_type(cur, run_id, row)
            updated.append(row["item_type_id"])
    cur.execute(
        "UPDATE relmigrate.runs SET item_types_created = %s, item_types_updated = %s WHERE run_id = %s",
        (created, updated, run_id),
    )
    return created, updated


def _create_item_type(cur, run_id, row):
    cur.execute(
        """
        INSERT INTO public.meta_item_types (id, label, description, uuid, is_relationship, is_versionable,
            version_control_enabled, revision_scheme, source_item_type_id, related_item_type_id)
        VALUES (%s, %s, %s, %s, true, false, false, 'A-Z', %s, %s)
        """,
        (row["item_type_id"], row["label"], "Relationship type for %s" % row["item_type_id"], str(uuid.uuid4()),
         row["source_item_type"], row["related_item_type"]),
    )
    cur.execute(
        "INSERT INTO relmigrate.item_type_changes (run_id, item_type_id, action, before) VALUES (%s, %s, 'created', NULL)",
        (run_id, row["item_type_id"]),
    )


def _update_item_type(cur, run_id, row):
    cur.execute(
        """
        INSERT INTO relmigrate.item_type_changes (run_id, item_type_id, action, before)
        SELECT %s, id, 'updated', jsonb_build_object('is_relationship', is_relationship,
               'source_item_type_id', source_item_type_id, 'related_item_type_id', related_item_type_id)
        FROM public.meta_item_types WHERE id = %s
        """,
        (run_id, row["item_type_id"]),
    )
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in sorted(row["changes"])
    )
    cur.execute(
        sql.SQL("UPDATE public.meta_item_types SET {} WHERE id = %s").format(assignments),
        [row["changes"][column] for column in sorted(row["changes"])] + [row["item_type_id"]],
    )


COPY_BATCH_SQL = """
WITH batch AS (
    SELECT r.id FROM public.meta_relationships r
    WHERE r.id > %(after)s ORDER BY r.id LIMIT %(limit)s
), inserted AS (
    INSERT INTO public.meta_items ({columns})
    SELECT {values}
    FROM batch b
    JOIN public.meta_relationships r ON r.id = b.id
    {migratable}
      AND {pending}
    ORDER BY r.id
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), ledger AS (
    INSERT INTO relmigrate.run_batches (run_id, batch_no, last_legacy_id, item_ids)
    SELECT %(run_id)s, %(batch_no)s, (SELECT max(id) FROM batch), COALESCE(array_agg(id), '{{}}')
    FROM inserted
    HAVING count(*) > 0
)
SELECT (SELECT max(id) FROM batch), (SELECT count(*) FROM inserted)
""".format(columns=", ".join(ITEM_COLUMNS), values=ITEM_VALUES_SQL, migratable=MIGRATABLE_JOIN_SQL,
           pending=PENDING_SQL)


def copy_batch(cur, run_id, batch_no, after, limit):
    """Copy one keyset batch of legacy rows after id ``after`` (MAPPING.md step 3), in the caller's transaction.

    Returns ``(last legacy id of the batch or None when there are no more rows, rows written)``.
    """
    cur.execute(COPY_BATCH_SQL, dict(after=after, limit=limit, run_id=run_id, batch_no=batch_no))
    return cur.fetchone()


def record_progress(cur, run_id, batches, migrated, skipped, rate, eta):
    """Update the run row after a batch, so a long copy is observable from another session."""
    cur.execute(
        "UPDATE relmigrate.runs SET batches = %s, migrated = %s, skipped_orphans = %s, rows_per_second = %s, "
        "eta_s = %s, updated_at = clock_timestamp() WHERE run_id = %s",
        (batches, migrated, skipped, rate, eta, run_id),
    )


def finish_run(cur, run_id, status, error=None):
    """Mark the run finished with ``status`` (``completed`` or ``failed``)."""
    cur.execute(
        "UPDATE relmigrate.runs SET status = %s, error = %s, finished_at = clock_timestamp(), "
        "updated_at = clock_timestamp(), eta_s = CASE WHEN %s = 'completed' THEN 0 ELSE eta_s END "
        "WHERE run_id = %s",
        (status, error, status, run_id),
    )


# --- rollback by delete --------------------------------------------------------------------------------------


def runs_to_undo(cur, run_id):
    """Return the ids of the runs a delete-rollback undoes: ``run_id`` or every run not rolled back yet."""
    cur.execute("SELECT to_regclass('relmigrate.runs') IS NOT NULL")
    if not cur.fetchone()[0]:
        if run_id:
            raise MigrationError("run %r is not in this database's ledger (there is no ledger)" % run_id)
        return []
    if run_id:
        cur.execute("SELECT run_id, status FROM relmigrate.runs WHERE run_id = %s", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise MigrationError("run %r is not in this database's ledger" % run_id)
        return [] if row[1] == "rolled_back" else [row[0]]
    cur.execute("SELECT run_id FROM relmigrate.runs WHERE status <> 'rolled_back' ORDER BY run_id")
    return [row[0] for row in cur.fetchall()]


def written_ids_sql():
    """SQL of the ids the given runs wrote (parameter ``%(runs)s``, a text array) that are still in meta_items."""
    return """
        SELECT DISTINCT w.id FROM relmigrate.run_batches b, unnest(b.item_ids) AS w(id)
        WHERE b.run_id = ANY(%(runs)s)
          AND EXISTS (SELECT 1 FROM public.meta_items m WHERE m.id = w.id)
    """


def referencing_rows(cur, runs):
    """Return ``["table.column (N rows)", ...]`` for rows outside the delete set that reference it."""
    cur.execute(
        """
        SELECT c.conrelid::regclass::text, a.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid = 'public.meta_items'::regclass AND array_length(c.conkey, 1) = 1
        ORDER BY 1, 2
        """
    )
    found = []
    for table, column in cur.fetchall():
        schema_table = table.split(".", 1) if "." in table else ["public", table]
        query = sql.SQL(
            "WITH doomed AS ({doomed}) SELECT count(*) FROM {table} x WHERE x.{column} IN (SELECT id FROM doomed)"
        ).format(doomed=sql.SQL(written_ids_sql()), table=sql.Identifier(*[part.strip('"') for part in schema_table]),
                 column=sql.Identifier(column))
        if table in ("meta_items", "public.meta_items"):
            query = sql.Composed([query, sql.SQL(" AND x.id NOT IN (SELECT id FROM doomed)")])
        cur.execute(query, dict(runs=runs))
        count = cur.fetchone()[0]
        if count:
            found.append("%s.%s (%d rows)" % (table, column, count))
    return found


def delete_written(cur, runs, rolled_back_by):
    """Delete the meta_items rows the runs wrote and mark the runs rolled back; returns the number deleted."""
    cur.execute(
        "DELETE FROM public.meta_items m USING ({written}) w WHERE m.id = w.id".format(written=written_ids_sql()),
        dict(runs=runs),
    )
    deleted = cur.rowcount
    cur.execute(
        "UPDATE relmigrate.runs SET status = 'rolled_back', rolled_back_at = clock_timestamp(), "
        "rolled_back_by = %s, updated_at = clock_timestamp() WHERE run_id = ANY(%s)",
        (rolled_back_by, runs),
    )
    return deleted


def count_written(cur, runs):
    """Return how many meta_items rows written by the runs still exist (what a delete would remove)."""
    cur.execute("SELECT count(*) FROM ({written}) w".format(written=written_ids_sql()), dict(runs=runs))
    return cur.fetchone()[0]
