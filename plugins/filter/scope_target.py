# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a scope lives, resolved on the controller with the collection's one tenancy resolver (no password)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: scope_target
short_description: Where a Yuantus scope's database lives (host, port, database, user), without its password
version_added: 0.1.0
description:
  - Resolves a scope (tenancy mode, URL or URL template, tenant and org) exactly as the modules do and returns
    where its database lives, never the password. Settings left empty fall back to the C(YUANTUS_*) environment
    variables of the controller.
  - To run C(pg_dump), C(pg_restore) or C(psql) against the scope, use M(yuantus.relmigrate.libpq_command).
options:
  _input:
    description: A dict with C(tenancy_mode), C(database_url), C(database_url_template), C(tenant_id), C(org_id).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Name the scope's database
  ansible.builtin.debug:
    msg: "{{ (relmigrate_scope | yuantus.relmigrate.scope_target).database }}"
"""

RETURN = r"""
_value:
  description: C(host), C(port), C(database), C(user), C(tenancy_mode), and C(tenant_id), C(org_id) (sanitized)
    outside the C(single) tenancy mode.
  type: dict
"""

import os

from ansible.errors import AnsibleFilterError
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import DatabaseError, resolve_target
from ansible_collections.yuantus.relmigrate.plugins.module_utils.tenancy import TenancyError

ENV_FALLBACKS = dict(
    tenancy_mode="YUANTUS_TENANCY_MODE",
    database_url="YUANTUS_DATABASE_URL",
    database_url_template="YUANTUS_DATABASE_URL_TEMPLATE",
)


def scope_target(scope):
    """Return where the scope lives, without the password: host, port, database, user, tenancy_mode, ids."""
    if not isinstance(scope, dict):
        raise AnsibleFilterError("a scope must be a dict of tenancy_mode, database_url, database_url_template, "
                                 "tenant_id, org_id")
    params = dict(scope)
    for key, variable in ENV_FALLBACKS.items():
        if not params.get(key):
            params[key] = os.environ.get(variable) or None
    try:
        return resolve_target(params)[1]
    except (TenancyError, DatabaseError) as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """yuantus.relmigrate scope filters."""

    def filters(self):
        return dict(scope_target=scope_target)
