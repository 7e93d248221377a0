#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: libpq_command
short_description: Run a PostgreSQL client program (pg_dump, pg_restore, psql) against a Yuantus scope database
version_added: 0.1.0
description:
  - Resolves the scope's database with the same connection options as every module of this collection and runs
    one PostgreSQL client program with the connection in its libpq environment (C(PGHOST), C(PGPORT),
    C(PGDATABASE), C(PGUSER), C(PGPASSWORD)), set inside the module process.
  - The password therefore never appears on a command line, in a temporary file, or in Ansible's C(-vvv) output
    (a task-level C(environment) would print it there); the program's output is returned with the password
    removed.
  - The command is an argument vector, never a shell string.
extends_documentation_fragment:
  - yuantus.relmigrate.connection
attributes:
  check_mode:
    support: none
    description: The program may write; the task is skipped in check mode unless it sets C(check_mode=false).
  diff_mode:
    support: none
    description: No diff.
options:
  argv:
    description: The program and its arguments, e.g. C([pg_dump, --format=custom, --file=/backups/x.dump]).
    type: list
    elements: str
    required: true
  database:
    description: Connect to this database of the scope's server instead of the scope's own (e.g. C(postgres)).
    type: str
  stdin:
    description: Text fed to the program's standard input.
    type: str
  umask:
    description: The umask the program runs with, so files it creates are private from their first byte.
    type: raw
    default: '0077'
author:
  - Yuantus relmigrate maintainers (@yuantus)
"""

EXAMPLES = r"""
- name: Dump the scope's database (connection options from the play's module_defaults)
  yuantus.relmigrate.libpq_command:
    argv: [pg_dump, --format=custom, --file=/backups/run-1/tenant-1__org-1.dump]
  changed_when: true

- name: Count legacy rows with psql
  yuantus.relmigrate.libpq_command:
    argv: [psql, --no-psqlrc, --tuples-only, --no-align, --command, "SELECT count(*) FROM meta_relationships"]
  check_mode: false
  changed_when: false
"""

RETURN = r"""
cmd:
  description: The argument vector that ran.
  returned: always
  type: list
  elements: str
rc:
  description: The program's exit status.
  returned: always
  type: int
stdout:
  description: Its standard output, password removed.
  returned: always
  type: str
stderr:
  description: Its standard error, password removed.
  returned: always
  type: str
database:
  description: The database the program connected to.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import (
    connection_argument_spec,
    libpq_environment,
    module_target,
    redact,
)


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        argv=dict(type="list", elements="str", required=True),
        database=dict(type="str"),
        stdin=dict(type="str"),
        umask=dict(type="raw", default="0077"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=False)
    target, scope = module_target(module)
    if module.params["database"]:
        target.database = module.params["database"]
    try:
        umask = int(str(module.params["umask"]), 8)
    except ValueError:
        module.fail_json(msg="umask must be an octal string such as 0077, got %r" % module.params["umask"])

    env = libpq_environment(target, module.params)
    argv = module.params["argv"]
    previous = os.umask(umask)
    try:
        rc, stdout, stderr = module.run_command(argv, data=module.params["stdin"], environ_update=env)
    finally:
        os.umask(previous)
    secrets = [target.password]
    result = dict(cmd=argv, rc=rc, stdout=redact(stdout, secrets), stderr=redact(stderr, secrets),
                  database=target.database, scope=scope, changed=True)
    if rc != 0:
        program = os.path.basename(argv[0])
        module.fail_json(msg="%s exited %d against %s: %s" % (program, rc, target.describe(),
                                                              result["stderr"].strip()[-2000:]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
