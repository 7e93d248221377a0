#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: relationship_items
short_description: Copy Yuantus legacy relationships into meta_items as relationship items, or undo that copy
version_added: 0.1.0
description:
  - O(state=present) runs the Yuantus "Relationship -> Item" migration in one scope database, idempotently. It
    creates (and with O(update_item_types) completes) one relationship ItemType per legacy relationship type, then
    copies every legacy row of C(meta_relationships) that is not yet in C(meta_items), in keyset batches ordered by
    id, one transaction per batch. A killed run keeps its finished batches; a re-run completes the rest with no
    duplicate and no gap.
  - The dry-run gate is enforced before anything is written; orphan rows fail the run unless O(allow_orphans).
  - A per-database advisory lock keeps two runs from copying into the same database at the same time.
  - Every run is recorded in a ledger (schema C(relmigrate) of the scope's database) in the same transactions as
    the rows it wrote. Existing C(meta_items) rows are never modified; the legacy tables are never written.
  - O(state=absent) is the runbook's rollback-by-delete, done safely. It deletes only the rows the ledger says a
    run wrote, and refuses, naming the tables, when other rows reference them.
extends_documentation_fragment:
  - yuantus.relmigrate.connection
attributes:
  check_mode:
    support: full
    description: An honest dry run; writes nothing and returns the counts and ItemType changes a real run makes.
  diff_mode:
    support: full
    description: Shows the ItemTypes to be created or updated and the counts before and after.
options:
  state:
    description: C(present) migrates; C(absent) deletes what migrations recorded in the ledger wrote.
    type: str
    choices: [present, absent]
    default: present
  update_item_types:
    description: Fill in missing fields of existing ItemTypes (C(is_relationship), source and related types).
    type: bool
    default: true
  allow_orphans:
    description: Skip (and count) rows whose type, source, related item or creator is missing, instead of failing.
    type: bool
    default: false
  batch_size:
    description: Legacy rows per batch (one transaction each).
    type: int
    default: 5000
  run_id:
    description:
      - With O(state=present), the id the run is recorded under; generated from the time when not given.
      - With O(state=absent), the run to undo; all runs not yet rolled back when not given.
    type: str
  lock_wait:
    description: Seconds to wait for another migration of the same database to finish before failing.
    type: int
    default: 0
  progress_log:
    description: File to append one line per batch to (for C(tail -f)); the ledger's run row is updated too.
    type: path
author:
  - Yuantus relmigrate maintainers (@yuantus)
"""

EXAMPLES = r"""
- name: Migrate tenant-1 / org-1 as the runbook's real run does
  yuantus.relmigrate.relationship_items:
    tenancy_mode: db-per-tenant-org
    database_url_template: "{{ yuantus_database_url_template }}"
    tenant_id: tenant-1
    org_id: org-1
    update_item_types: true
    run_id: "{{ relmigrate_run_id }}"
    progress_log: /var/log/relmigrate/tenant-1__org-1.log

- name: Undo one run by deleting the rows it wrote
  yuantus.relmigrate.relationship_items:
    database_url: "{{ yuantus_database_url }}"
    state: absent
    run_id: 20261204T101500Z-a1b2c3
"""

RETURN = r"""
database:
  description: Name of the scope's database.
  returned: always
  type: str
scope:
  description: Where the scope lives (no password).
  returned: always
  type: dict
run_id:
  description: The run's id in the ledger.
  returned: state=present
  type: str
total:
  description: Legacy rows in meta_relationships.
  returned: state=present, unless skipped
  type: int
existing_items_before:
  description: Legacy ids already present in meta_items before the run.
  returned: state=present, unless skipped
  type: int
pending_before:
  description: Legacy rows not yet in meta_items before the run.
  returned: state=present, unless skipped
  type: int
migrated:
  description: Rows written to meta_items by this run (what it would write, in check mode).
  returned: state=present
  type: int
skipped_orphans:
  description: Orphan rows skipped (only with O(allow_orphans)).
  returned: state=present
  type: int
orphan_sample:
  description: The first ids of skipped orphan rows.
  returned: state=present
  type: list
  elements: str
item_types_created:
  description: ItemTypes created (to be created, in check mode).
  returned: state=present
  type: list
  elements: str
item_types_updated:
  description: ItemTypes whose missing fields were filled.
  returned: state=present
  type: list
  elements: str
pending_after:
  description: Legacy rows not in meta_items after the run (the skipped orphans, normally).
  returned: state=present
  type: int
batches:
  description: Batches that wrote rows.
  returned: state=present
  type: int
duration_s:
  description: Seconds the copy took (ItemTypes and batches).
  returned: state=present
  type: float
rows_per_second:
  description: Rows copied per second.
  returned: state=present
  type: float
skipped:
  description: True when the legacy table is missing (nothing to do).
  returned: always
  type: bool
skip_reason:
  description: Why the scope was skipped.
  returned: when skipped
  type: str
counts:
  description: The dry-run counts taken before the run (see M(yuantus.relmigrate.relationship_items_info)).
  returned: state=present, unless skipped
  type: dict
runs:
  description: With O(state=absent), the runs undone (that would be undone, in check mode).
  returned: state=absent
  type: list
  elements: str
deleted:
  description: With O(state=absent), rows deleted from meta_items (that would be, in check mode).
  returned: state=absent
  type: int
would_delete:
  description: With O(state=absent) in check mode, rows the delete would remove from meta_items.
  returned: state=absent, in check mode
  type: int
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.yuantus.relmigrate.plugins.module_utils import migration
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import (
    connection_argument_spec,
    error_text,
    module_connect,
    psycopg,
)
from ansible_collections.yuantus.relmigrate.plugins.module_utils.migration import MigrationError

ORPHAN_COUNTS = migration.ORPHAN_COUNTS


def _item_type_diff(plan):
    before, after = {}, {}
    for row in plan:
        if row["would_create"]:
            after[row["item_type_id"]] = dict(row["changes"], is_relationship=True, label=row["label"])
        elif row["would_update"]:
            before[row["item_type_id"]] = dict((column, row[column]) for column in row["changes"])
            after[row["item_type_id"]] = dict(row["changes"])
    return before, after


class Migration(object):
    """One run of ``state: present`` in one scope database."""

    def __init__(self, module, conn, scope):
        self.module = module
        self.params = module.params
        self.conn = conn
        self.scope = scope
        self.run_id = self.params["run_id"] or migration.new_run_id()

    def report(self):
        with self.conn.cursor() as cur:
            tables = migration.existing_tables(cur)
            migration.require_target_tables(tables)
            if not tables[migration.LEGACY_TABLE]:
                return None
            report = migration.analyse(cur, self.params["update_item_types"], self.params["allow_orphans"])
        self.conn.rollback()
        return report

    def run(self):
        result = dict(changed=False, run_id=self.run_id, skipped=False, migrated=0, skipped_orphans=0,
                      orphan_sample=[], item_types_created=[], item_types_updated=[], batches=0,
                      duration_s=0.0, rows_per_second=0.0)
        if not self.module.check_mode:
            migration.acquire_lock(self.conn, self.params["lock_wait"])
        report = self.report()
        if report is None:
            result.update(skipped=True, skip_reason="legacy table missing", pending_after=0)
            return result
        if report["lacking"]:
            self.fail(migration.privileges_message(report["lacking"]), counts=report["counts"])
        if report["gate_failures"]:
            self.fail(migration.gate_message(report), counts=report["counts"])

        counts, plan = report["counts"], report["plan"]
        to_copy = counts["pending"] - counts["orphans"] - counts["invalid_properties"]
        skipped = counts["orphans"] if self.params["allow_orphans"] else 0
        result.update(total=counts["total"], existing_items_before=counts["existing_items"],
                      pending_before=counts["pending"], counts=counts, skipped_orphans=skipped,
                      orphan_sample=counts["orphan_sample"] if skipped else [])
        item_types_created = [row["item_type_id"] for row in plan if row["would_create"]]
        item_types_updated = [row["item_type_id"] for row in plan if row["would_update"]]
        before_types, after_types = _item_type_diff(plan)
        result["diff"] = dict(
            before=dict(pending=counts["pending"], migrated_items=counts["existing_items"], item_types=before_types),
            after=dict(pending=counts["pending"] - to_copy, migrated_items=counts["existing_items"] + to_copy,
                       item_types=after_types),
        )
        if not to_copy and not item_types_created and not item_types_updated:
            result.update(pending_after=counts["pending"])
            return result
        if self.module.check_mode:
            result.update(changed=True, migrated=to_copy, item_types_created=item_types_created,
                          item_types_updated=item_types_updated, pending_after=counts["pending"] - to_copy)
            return result

        result.update(self.copy(counts, plan, skipped))
        # Under the migration lock only this run writes legacy ids into meta_items: no second full count needed.
        result.update(changed=True, pending_after=counts["pending"] - result["migrated"])
        return result

    def copy(self, counts, plan, skipped):
        started = time.monotonic()
        parameters = dict(batch_size=self.params["batch_size"], update_item_types=self.params["update_item_types"],
                          allow_orphans=self.params["allow_orphans"], scope=self.scope)
        with self.conn.cursor() as cur:
            migration.ensure_ledger(cur)
            created, updated = migration.start_run(cur, self.run_id, parameters, counts, plan)
        self.conn.commit()
        to_copy = counts["pending"] - counts["orphans"] - counts["invalid_properties"]
        migrated, batches, after = 0, 0, ""
        try:
            while True:
                with self.conn.cursor() as cur:
                    last_id, written = migration.copy_batch(cur, self.run_id, batches + 1, after,
                                                            self.params["batch_size"])
                    if last_id is None:
                        self.conn.rollback()
                        break
                    after = last_id
                    if written:
                        batches += 1
                        migrated += written
                    elapsed = max(time.monotonic() - started, 1e-6)
                    rate = migrated / elapsed
                    eta = max(to_copy - migrated, 0) / rate if rate else None
                    migration.record_progress(cur, self.run_id, batches, migrated, skipped, round(rate, 1),
                                              None if eta is None else round(eta, 1))
                self.conn.commit()
                self.log_progress(batches, migrated, to_copy, rate, eta, after)
            with self.conn.cursor() as cur:
                migration.finish_run(cur, self.run_id, "completed")
            self.conn.commit()
        except psycopg.Error as exc:
            self.conn.rollback()
            self.mark_failed(exc)
            raise
        duration = time.monotonic() - started
        return dict(migrated=migrated, batches=batches, item_types_created=created, item_types_updated=updated,
                    duration_s=round(duration, 3), rows_per_second=round(migrated / duration, 1) if duration else 0.0)

    def mark_failed(self, exc):
        try:
            with self.conn.cursor() as cur:
                migration.finish_run(cur, self.run_id, "failed", error_text(exc))
            self.conn.commit()
        except psycopg.Error:
            self.conn.rollback()

    def log_progress(self, batches, migrated, to_copy, rate, eta, last_id):
        path = self.params["progress_log"]
        if not path:
            return
        line = "%s run=%s database=%s batch=%d migrated=%d/%d rate=%.0f/s eta=%s last_id=%s\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), self.run_id, self.scope["database"], batches,
            migrated, to_copy, rate, "?" if eta is None else "%.1fs" % eta, last_id)
        with open(path, "a") as handle:
            handle.write(line)

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, run_id=self.run_id, database=self.scope["database"], scope=self.scope,
                              **extra)


def undo(module, conn, scope):
    """``state: absent``: delete what the ledger says runs wrote, or refuse when other rows reference it."""
    if not module.check_mode:
        migration.acquire_lock(conn, module.params["lock_wait"])
    with conn.cursor() as cur:
        migration.require_target_tables(migration.existing_tables(cur))
        runs = migration.runs_to_undo(cur, module.params["run_id"])
        if not runs:
            conn.rollback()
            return dict(changed=False, runs=[], deleted=0)
        blockers = migration.referencing_rows(cur, runs)
        if blockers:
            conn.rollback()
            module.fail_json(
                msg="refusing to delete the rows written by run(s) %s: other rows reference them in %s. Nothing "
                    "was deleted; remove those references first or restore the backup instead."
                    % (", ".join(runs), ", ".join(blockers)),
                database=scope["database"], scope=scope, runs=runs, referenced_by=blockers)
        if module.check_mode:
            would = migration.count_written(cur, runs)
            conn.rollback()
            return dict(changed=bool(would) or bool(runs), runs=runs, deleted=would, would_delete=would,
                        diff=dict(before=dict(migrated_items=would), after=dict(migrated_items=0)))
        deleted = migration.delete_written(cur, runs, module.params["application_name"])
    conn.commit()
    return dict(changed=True, runs=runs, deleted=deleted,
                diff=dict(before=dict(migrated_items=deleted), after=dict(migrated_items=0)))


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        update_item_types=dict(type="bool", default=True),
        allow_orphans=dict(type="bool", default=False),
        batch_size=dict(type="int", default=5000),
        run_id=dict(type="str"),
        lock_wait=dict(type="int", default=0),
        progress_log=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["batch_size"] < 1:
        module.fail_json(msg="batch_size must be a positive number of rows, got %d" % module.params["batch_size"])
    if module.params["lock_wait"] < 0:
        module.fail_json(msg="lock_wait must be 0 or more seconds, got %d" % module.params["lock_wait"])
    conn, target, scope = module_connect(module)
    try:
        if module.params["state"] == "absent":
            result = undo(module, conn, scope)
        else:
            result = Migration(module, conn, scope).run()
    except MigrationError as exc:
        module.fail_json(msg=str(exc), database=target.database, scope=scope)
    except psycopg.Error as exc:
        module.fail_json(msg="migration of %s failed: %s" % (target.describe(), error_text(exc, target)),
                         database=target.database, scope=scope)
    finally:
        conn.close()
    module.exit_json(database=target.database, scope=scope, **result)


if __name__ == "__main__":
    main()
