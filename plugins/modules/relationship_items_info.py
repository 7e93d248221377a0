#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: relationship_items_info
short_description: Report what the Yuantus relationship -> item migration would do in one scope database
version_added: 0.1.0
description:
  - Reads one Yuantus scope database (tenant, tenant/org, or the single database) in a READ ONLY transaction and
    returns the runbook's dry-run counts, a per-type breakdown, and whether the dry-run gate passes.
  - Never writes anything.
  - Optionally compares every row the collection migrated with what the mapping prescribes (O(check_content)).
extends_documentation_fragment:
  - yuantus.relmigrate.connection
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  update_item_types:
    description: Answer for a run that fills missing ItemType fields (as the runbook's real run does).
    type: bool
    default: true
  allow_orphans:
    description: Answer for a run that skips orphan rows instead of failing on them.
    type: bool
    default: false
  check_content:
    description: Also verify, in SQL, that every row written by this collection carries the mapped values.
    type: bool
    default: false
author:
  - Yuantus relmigrate maintainers (@yuantus)
"""

EXAMPLES = r"""
- name: Dry-run the migration of tenant-1 / org-1
  yuantus.relmigrate.relationship_items_info:
    tenancy_mode: db-per-tenant-org
    database_url_template: "{{ yuantus_database_url_template }}"
    tenant_id: tenant-1
    org_id: org-1
  register: dry_run

- name: Fail unless the gate passes
  ansible.builtin.assert:
    that: dry_run.ready
    fail_msg: "{{ dry_run.gate_failures | join(', ') }}"
"""

RETURN = r"""
database:
  description: Name of the scope's database.
  returned: always
  type: str
  sample: yuantus_mt_pg__tenant-1__org-1
scope:
  description: Where the scope lives (no password).
  returned: always
  type: dict
  sample: {host: 127.0.0.1, port: 5432, database: yuantus, user: yuantus, tenancy_mode: single}
tables:
  description: Whether each table of the migration exists.
  returned: always
  type: dict
  sample: {meta_relationships: true, meta_relationship_types: true, meta_items: true, meta_item_types: true}
skipped:
  description: True when the legacy table is missing, so there is nothing to migrate.
  returned: always
  type: bool
skip_reason:
  description: Why the scope is skipped.
  returned: when skipped
  type: str
  sample: legacy table missing
counts:
  description:
    - C(total) legacy rows, C(existing_items) already in meta_items, C(pending) not yet migrated.
    - Gate counts over the pending rows, C(missing_type), C(missing_source), C(missing_related),
      C(missing_created_by), C(invalid_properties); C(invalid_type_refs) counts legacy types.
    - C(orphans) pending rows with a missing reference, C(orphan_sample) and C(invalid_sample) their first ids.
  returned: unless skipped
  type: dict
types:
  description: Per legacy type, its ItemType, rows, pending rows, and what step 2 would do to the ItemType.
  returned: unless skipped
  type: list
  elements: dict
ready:
  description: True when the dry-run gate passes for a run with the given O(allow_orphans).
  returned: always
  type: bool
gate_failures:
  description:
    - One C(name=count) entry per gate count that fails, and C(privileges) when the connected role lacks a
      privilege the run needs (see RV(missing_privileges)).
  returned: always
  type: list
  elements: str
missing_privileges:
  description: Privileges the connected role lacks for the run, e.g. C(INSERT on public.meta_items).
  returned: unless skipped
  type: list
  elements: str
message:
  description: The gate's message with every count, when it fails.
  returned: when the gate fails
  type: str
server:
  description: Server version and database size.
  returned: always
  type: dict
  sample: {server_version_num: 150018, server_version: "15.18", database_size_bytes: 8000000}
row_counts:
  description: Row counts of meta_relationships and meta_items (null when a table is missing).
  returned: always
  type: dict
runs:
  description: Runs recorded in the scope's relmigrate ledger.
  returned: always
  type: list
  elements: dict
verification:
  description:
    - With O(check_content), C(legacy_total), C(items_present), C(missing), C(written_by_ledger), C(mismatched)
      and C(mismatch_sample).
  returned: when check_content
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import (
    connection_argument_spec,
    error_text,
    module_connect,
    psycopg,
)
from ansible_collections.yuantus.relmigrate.plugins.module_utils.migration import (
    LEGACY_TABLE,
    MigrationError,
    analyse,
    existing_tables,
    gate_message,
    ledger_runs,
    public_type_entry,
    require_target_tables,
    server_facts,
    verify_migrated,
)


def inspect(cur, params):
    """Return the module result for an open READ ONLY cursor."""
    tables = existing_tables(cur)
    server = server_facts(cur)
    result = dict(
        database=server["database"],
        server=server,
        tables=dict((name, tables[name]) for name in sorted(tables) if name != "rbac_users"),
        runs=ledger_runs(cur),
        skipped=False,
        ready=True,
        gate_failures=[],
        row_counts=dict(meta_relationships=None, meta_items=None),
    )
    require_target_tables(tables)
    cur.execute("SELECT count(*) FROM public.meta_items")
    result["row_counts"]["meta_items"] = cur.fetchone()[0]
    if not tables[LEGACY_TABLE]:
        result.update(skipped=True, skip_reason="legacy table missing")
        return result
    report = analyse(cur, params["update_item_types"], params["allow_orphans"])
    result["row_counts"]["meta_relationships"] = report["counts"]["total"]
    result.update(
        counts=report["counts"],
        types=[public_type_entry(row) for row in report["plan"]],
        ready=not report["gate_failures"],
        gate_failures=report["gate_failures"],
        missing_privileges=report["lacking"],
    )
    if report["gate_failures"]:
        result["message"] = gate_message(report)
    if params["check_content"]:
        result["verification"] = verify_migrated(cur, tables)
    return result


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        update_item_types=dict(type="bool", default=True),
        allow_orphans=dict(type="bool", default=False),
        check_content=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    conn, target, scope = module_connect(module)
    try:
        conn.read_only = True
        with conn.cursor() as cur:
            result = inspect(cur, module.params)
        conn.rollback()
    except MigrationError as exc:
        module.fail_json(msg=str(exc), database=target.database, scope=scope)
    except psycopg.Error as exc:
        module.fail_json(msg="reading %s failed: %s" % (target.describe(), error_text(exc, target)),
                         database=target.database, scope=scope)
    finally:
        conn.close()
    module.exit_json(changed=False, scope=scope, **result)


if __name__ == "__main__":
    main()
