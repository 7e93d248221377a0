# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that resolve a scope's connection settings with the collection's one tenancy resolver."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: libpq_env
short_description: The libpq environment (PGHOST, PGPASSWORD...) of a Yuantus scope
version_added: 0.1.0
description:
  - Resolves a scope (tenancy mode, URL or URL template, tenant and org) exactly as the modules do and returns
    the libpq environment variables that C(pg_dump), C(pg_restore) and C(psql) read, so that no password ever
    appears on a command line. Settings left empty fall back to the C(YUANTUS_*) environment variables of the
    controller.
  - The result holds the password; use it only in a task's C(environment) or with C(no_log).
options:
  _input:
    description: A dict with C(tenancy_mode), C(database_url), C(database_url_template), C(tenant_id), C(org_id).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Dump the scope's database
  ansible.builtin.command:
    argv: [pg_dump, --format=custom, --file=/backups/scope.dump]
  environment: "{{ scope | yuantus.relmigrate.libpq_env }}"
"""

RETURN = r"""
_value:
  description: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD (when set), PGAPPNAME, PGCONNECT_TIMEOUT.
  type: dict
"""

import os

from ansible.errors import AnsibleFilterError
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import (
    APPLICATION_NAME,
    DatabaseError,
    resolve_target,
)
from ansible_collections.yuantus.relmigrate.plugins.module_utils.tenancy import TenancyError

ENV_FALLBACKS = dict(
    tenancy_mode="YUANTUS_TENANCY_MODE",
    database_url="YUANTUS_DATABASE_URL",
    database_url_template="YUANTUS_DATABASE_URL_TEMPLATE",
)


def _target(scope):
    if not isinstance(scope, dict):
        raise AnsibleFilterError("a scope must be a dict of tenancy_mode, database_url, database_url_template, "
                                 "tenant_id, org_id")
    params = dict(scope)
    for key, variable in ENV_FALLBACKS.items():
        if not params.get(key):
            params[key] = os.environ.get(variable) or None
    try:
        return resolve_target(params)
    except (TenancyError, DatabaseError) as exc:
        raise AnsibleFilterError(str(exc))


def libpq_env(scope, connect_timeout=10):
    """Return the libpq environment of the scope's database (holds the password)."""
    target = _target(scope)[0]
    env = dict(PGHOST=target.host or "", PGPORT=str(target.port or 5432), PGDATABASE=target.database,
               PGUSER=target.user or "", PGAPPNAME=APPLICATION_NAME, PGCONNECT_TIMEOUT=str(connect_timeout))
    if target.password:
        env["PGPASSWORD"] = target.password
    sslmode = target.query.get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = sslmode
    return dict((key, value) for key, value in env.items() if value != "")


def scope_target(scope):
    """Return where the scope lives, without the password: host, port, database, user, tenancy_mode, ids."""
    return _target(scope)[1]


class FilterModule(object):
    """yuantus.relmigrate scope filters."""

    def filters(self):
        return dict(libpq_env=libpq_env, scope_target=scope_target)
