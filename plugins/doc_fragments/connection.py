# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The connection options every yuantus.relmigrate module shares."""

    DOCUMENTATION = r"""
options:
  database_url:
    description:
      - URL of the scope's database when O(tenancy_mode=single), SQLAlchemy style
        (C(postgresql+psycopg://user:pass@host:5432/db)) or plain C(postgresql://...).
      - Falls back to the E(YUANTUS_DATABASE_URL) environment variable, as Yuantus does.
      - Never shown in output; errors name the host, port, database and user only.
    type: str
  tenancy_mode:
    description:
      - How Yuantus maps a scope to a database. Falls back to E(YUANTUS_TENANCY_MODE), then C(single).
    type: str
    choices: [single, db-per-tenant, db-per-tenant-org]
  database_url_template:
    description:
      - URL template of tenant (and org) databases, with C({tenant_id}) and C({org_id}) placeholders, used when
        O(tenancy_mode) is C(db-per-tenant) or C(db-per-tenant-org). Falls back to
        E(YUANTUS_DATABASE_URL_TEMPLATE).
      - The ids are sanitised exactly as Yuantus does before formatting (characters outside C(A-Za-z0-9-_)
        become C(_), an empty id becomes C(default)).
    type: str
  tenant_id:
    description: Tenant of the scope; required unless O(tenancy_mode=single).
    type: str
  org_id:
    description: Organisation of the scope; required when O(tenancy_mode=db-per-tenant-org).
    type: str
  connect_timeout:
    description: Seconds to wait for the connection before failing.
    type: int
    default: 10
  lock_timeout:
    description:
      - Seconds a statement waits for a table or row lock held by another session (PostgreSQL C(lock_timeout))
        before it fails; C(0) waits forever.
    type: int
    default: 10
  statement_timeout:
    description: Seconds a statement may run before PostgreSQL cancels it; C(0) means no limit.
    type: int
    default: 0
  application_name:
    description: The C(application_name) of the session, as seen in C(pg_stat_activity).
    type: str
    default: yuantus.relmigrate
requirements:
  - psycopg >= 3.1 (on the host that runs the module)
  - sqlalchemy >= 2.0 (optional; its URL parser is used when installed)
notes:
  - The scope's database must hold Yuantus's tables in schema C(public).
"""
