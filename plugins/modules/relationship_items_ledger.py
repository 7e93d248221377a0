#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: relationship_items_ledger
short_description: Record migration runs as rolled back in a Yuantus scope's relmigrate ledger
version_added: 0.1.0
description:
  - Marks runs of the relationship -> item migration as C(rolled_back) in the ledger (schema C(relmigrate)) of one
    scope database, creating the ledger when it is missing.
  - A run missing from the ledger is inserted from the record given (as returned in C(runs) by
    M(yuantus.relmigrate.relationship_items_info)); this is how a restore keeps the history of the runs that the
    restored backup predates. A run already present and not rolled back is marked rolled back; a run already
    rolled back is left alone.
  - Only the run rows are written; the rows the runs wrote and their batches are not touched.
extends_documentation_fragment:
  - yuantus.relmigrate.connection
attributes:
  check_mode:
    support: full
    description: Computes which runs would be inserted or marked, writes nothing.
  diff_mode:
    support: none
    description: No diff; the result lists the runs inserted and marked.
options:
  runs:
    description:
      - The runs to record as rolled back; each needs C(run_id). Other keys (C(started_at), C(finished_at),
        C(migrated), C(skipped_orphans), C(batches), C(parameters), C(item_types_created), C(item_types_updated),
        C(rolled_back_at), C(rolled_back_by), C(status)) are used when the run has to be inserted.
    type: list
    elements: dict
    required: true
  rolled_back_by:
    description: Who rolled the runs back (stored in C(rolled_back_by)).
    type: str
    default: restore
author:
  - Yuantus relmigrate maintainers (@yuantus)
"""

EXAMPLES = r"""
- name: Mark the runs a restore undid as rolled back
  yuantus.relmigrate.relationship_items_ledger:
    database_url: "{{ yuantus_database_url }}"
    runs: "{{ ledger_before.runs }}"
    rolled_back_by: restore
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
inserted:
  description: Runs that were missing from the ledger and were inserted as rolled back (would be, in check mode).
  returned: always
  type: list
  elements: str
marked:
  description: Runs present in the ledger that were marked rolled back (would be, in check mode).
  returned: always
  type: list
  elements: str
unchanged:
  description: Runs already rolled back.
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.yuantus.relmigrate.plugins.module_utils import migration
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import (
    connection_argument_spec,
    error_text,
    module_connect,
    psycopg,
)

INSERT_RUN_SQL = """
INSERT INTO relmigrate.runs (run_id, status, started_at, finished_at, parameters, migrated, skipped_orphans,
                             batches, item_types_created, item_types_updated, rolled_back_at, rolled_back_by)
VALUES (%(run_id)s, 'rolled_back', COALESCE(%(started_at)s::timestamptz, clock_timestamp()),
        %(finished_at)s::timestamptz, %(parameters)s::jsonb, %(migrated)s, %(skipped_orphans)s, %(batches)s,
        %(item_types_created)s, %(item_types_updated)s,
        COALESCE(%(rolled_back_at)s::timestamptz, clock_timestamp()), %(rolled_back_by)s)
"""


def _insert_values(run, rolled_back_by):
    """Column values of a run re-inserted as rolled back; a run rolled back before keeps its when and by whom."""
    earlier = run.get("status") == "rolled_back"
    return dict(
        run_id=run["run_id"],
        started_at=run.get("started_at"),
        finished_at=run.get("finished_at"),
        parameters=json.dumps(run.get("parameters") or {}, sort_keys=True),
        migrated=int(run.get("migrated") or 0),
        skipped_orphans=int(run.get("skipped_orphans") or 0),
        batches=int(run.get("batches") or 0),
        item_types_created=list(run.get("item_types_created") or []),
        item_types_updated=list(run.get("item_types_updated") or []),
        rolled_back_at=run.get("rolled_back_at") if earlier else None,
        rolled_back_by=(run.get("rolled_back_by") or rolled_back_by) if earlier else rolled_back_by,
    )


def record_rolled_back(cur, runs, rolled_back_by, check_mode):
    """Insert missing runs and mark present ones rolled back; returns ``(inserted, marked, unchanged)`` ids."""
    ids = [run["run_id"] for run in runs]
    present = {}
    cur.execute("SELECT to_regclass('relmigrate.runs') IS NOT NULL")
    if cur.fetchone()[0]:
        cur.execute("SELECT run_id, status FROM relmigrate.runs WHERE run_id = ANY(%s)", (ids,))
        present = dict(cur.fetchall())
    inserted = [run for run in runs if run["run_id"] not in present]
    marked = [run_id for run_id in ids if run_id in present and present[run_id] != "rolled_back"]
    unchanged = [run_id for run_id in ids if present.get(run_id) == "rolled_back"]
    if check_mode or not (inserted or marked):
        return [run["run_id"] for run in inserted], marked, unchanged
    migration.ensure_ledger(cur)
    for run in inserted:
        cur.execute(INSERT_RUN_SQL, _insert_values(run, rolled_back_by))
    if marked:
        cur.execute(
            "UPDATE relmigrate.runs SET status = 'rolled_back', rolled_back_at = clock_timestamp(), "
            "rolled_back_by = %s, updated_at = clock_timestamp() WHERE run_id = ANY(%s)",
            (rolled_back_by, marked),
        )
    return [run["run_id"] for run in inserted], marked, unchanged


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        runs=dict(type="list", elements="dict", required=True),
        rolled_back_by=dict(type="str", default="restore"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runs = module.params["runs"]
    if any(not isinstance(run.get("run_id"), str) or not run["run_id"] for run in runs):
        module.fail_json(msg="every entry of runs needs a run_id")
    if len(set(run["run_id"] for run in runs)) != len(runs):
        module.fail_json(msg="runs lists a run_id more than once")
    conn, target, scope = module_connect(module)
    try:
        with conn.cursor() as cur:
            inserted, marked, unchanged = record_rolled_back(cur, runs, module.params["rolled_back_by"],
                                                             module.check_mode)
        if module.check_mode:
            conn.rollback()
        else:
            conn.commit()
    except psycopg.Error as exc:
        conn.rollback()
        module.fail_json(msg="writing the ledger of %s failed: %s" % (target.describe(), error_text(exc, target)),
                         database=target.database, scope=scope)
    finally:
        conn.close()
    module.exit_json(changed=bool(inserted or marked), database=target.database, scope=scope, inserted=inserted,
                     marked=marked, unchanged=unchanged)


if __name__ == "__main__":
    main()
