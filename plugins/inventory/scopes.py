# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory plugin ``yuantus.relmigrate.scopes``: one inventory host per Yuantus database scope."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: scopes
short_description: One inventory host per Yuantus database scope (tenant/org, tenant or single database)
version_added: 1.0.0
description:
  - Builds an inventory in which every host is one Yuantus database scope, so that a playbook runs once per
    database and C(-l tenant-1) selects every scope of tenant C(tenant-1).
  - "Host names: C(<tenant>__<org>) in C(db-per-tenant-org) mode, C(<tenant>) in C(db-per-tenant) mode and
    O(single_host_name) (C(yuantus)) in C(single) mode. Ids in host and group names are sanitised the way Yuantus
    sanitises them for database names (every character outside C(A-Z a-z 0-9 - _) becomes C(_))."
  - "Host variables: C(yuantus_tenancy_mode), C(yuantus_tenant_id), C(yuantus_org_id) (C(db-per-tenant-org)
    only) and C(yuantus_database_name) (when the URL template is known; the name only, never a URL)."
  - "Groups: every scope is in O(scope_group) (C(yuantus_scopes)). In C(db-per-tenant-org) mode each tenant is a
    child group of O(scope_group) named after the tenant id (C(tenant-1)) holding that tenant's scopes. In
    C(db-per-tenant) mode the host already carries the tenant's name, so no tenant group is made (a group and a
    host of the same name make Ansible warn)."
  - "Tenant ids such as C(tenant-1) contain C(-), which Ansible calls an invalid group-name character. Under the
    default C(force_valid_group_names = never) Ansible keeps the name but prints one warning; with C(always) or
    C(silently) it renames the group C(tenant_1) and C(-l tenant-1) no longer matches it (this plugin then warns
    and C(-l 'tenant-1__*') still works). The collection's C(ansible.cfg) sets C(force_valid_group_names = ignore)
    (or export E(ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS=ignore)): names are kept and nothing is printed."
  - "O(source=identity) lists the active rows of C(auth_tenants) and C(auth_organizations) in the identity
    database. Caution: C(auth_organizations.id) is globally unique, so two tenants cannot both have an org row
    C(org-1) even when both have a C(..__org-1) database; such scopes are missing from the identity database."
  - "O(source=databases) (the default) lists the databases on the server of O(database_url_template) (through its
    O(maintenance_database)) whose names the template produces, and reads the (sanitised) ids back from the names.
    It finds every scope database that exists, including those the identity database cannot name, and also
    those of tenants deactivated in Yuantus. Ids are matched shortest-first: a tenant id that contains the
    template's own separator (C(__)) is ambiguous and is read as the shortest tenant id that fits."
  - "Secrets: the URLs hold passwords. By default the plugin uses them only to discover the scopes and puts no URL
    into the inventory; the playbooks then read E(YUANTUS_DATABASE_URL_TEMPLATE) / E(YUANTUS_DATABASE_URL) from
    the controller's environment. With O(set_connection_vars=true) the plugin sets the group variables
    C(yuantus_database_url_template), C(yuantus_database_url) and C(yuantus_identity_database_url) of
    O(scope_group) to the option values exactly as given: a Jinja expression (for example an environment lookup)
    or a vaulted value stays a reference that is rendered only when a task uses it, while a literal URL given here
    is copied into the inventory (and shows in C(ansible-inventory --list))."
  - The inventory source file name must end with C(scopes.yml) or C(scopes.yaml).
  - Needs psycopg 3 on the controller (and SQLAlchemy, optionally, for URL parsing) unless O(tenancy_mode=single).
extends_documentation_fragment:
  - ansible.builtin.constructed
options:
  plugin:
    description: The name of this plugin; it makes the file an inventory source of this plugin.
    type: str
    required: true
    choices: [yuantus.relmigrate.scopes]
  tenancy_mode:
    description: Yuantus's C(TENANCY_MODE).
    type: str
    choices: [single, db-per-tenant, db-per-tenant-org]
    default: single
    env:
      - name: YUANTUS_TENANCY_MODE
  source:
    description:
      - Where the scopes come from (ignored in C(single) mode).
      - C(databases) lists the server's databases matching O(database_url_template); C(identity) reads the
        active tenants and organisations of the identity database at O(identity_database_url).
    type: str
    choices: [databases, identity]
    default: databases
  database_url:
    description:
      - Yuantus's C(DATABASE_URL) (C(single) mode). Only used with O(set_connection_vars=true).
      - May be a Jinja expression, for example C({{ lookup('ansible.builtin.env', 'YUANTUS_DATABASE_URL') }}), or
        a vaulted value.
    type: str
    env:
      - name: YUANTUS_DATABASE_URL
  database_url_template:
    description:
      - Yuantus's C(DATABASE_URL_TEMPLATE), SQLAlchemy style with C({tenant_id}) and C({org_id}) placeholders,
        for example C(postgresql+psycopg://user:pass@db:5432/yuantus_mt_pg__{tenant_id}__{org_id}).
      - Required by O(source=databases); with O(source=identity) it only adds C(yuantus_database_name).
      - May be a Jinja expression or a vaulted value.
    type: str
    env:
      - name: YUANTUS_DATABASE_URL_TEMPLATE
  identity_database_url:
    description:
      - Yuantus's C(IDENTITY_DATABASE_URL). Required by O(source=identity).
      - May be a Jinja expression or a vaulted value.
    type: str
    env:
      - name: YUANTUS_IDENTITY_DATABASE_URL
  maintenance_database:
    description: The database that O(source=databases) connects to (on the server and with the credentials of
      O(database_url_template)) to list the databases.
    type: str
    default: postgres
  include_inactive:
    description: With O(source=identity), also list tenants and organisations whose C(is_active) is false.
    type: bool
    default: false
  include_tenants:
    description: Keep only scopes whose tenant id (as stored, or sanitised) matches one of these shell patterns
      (C(fnmatch)). Empty keeps every tenant.
    type: list
    elements: str
    default: []
  exclude_tenants:
    description: Drop scopes whose tenant id (as stored, or sanitised) matches one of these shell patterns.
    type: list
    elements: str
    default: []
  include_orgs:
    description: C(db-per-tenant-org) only. Keep only scopes whose org id matches one of these shell patterns.
    type: list
    elements: str
    default: []
  exclude_orgs:
    description: C(db-per-tenant-org) only. Drop scopes whose org id matches one of these shell patterns.
    type: list
    elements: str
    default: []
  include_scopes:
    description: Keep only scopes whose host name (C(tenant-1__org-1)) matches one of these shell patterns.
    type: list
    elements: str
    default: []
  exclude_scopes:
    description: Drop scopes whose host name matches one of these shell patterns.
    type: list
    elements: str
    default: []
  single_host_name:
    description: The host name of the one scope in C(single) mode.
    type: str
    default: yuantus
  scope_group:
    description: The group holding every scope (directly, or through the tenant groups).
    type: str
    default: yuantus_scopes
  tenant_groups:
    description: In C(db-per-tenant-org) mode, make one group per tenant, named after the sanitised tenant id.
    type: bool
    default: true
  connection:
    description:
      - The C(ansible_connection) set as a variable of O(scope_group). The scopes are databases reached from the
        controller, hence C(local); a C(group_vars/<tenant>.yml) or C(host_vars/<scope>.yml) file (or O(compose))
        can point a scope at a bastion instead. An empty value sets nothing.
    type: str
    default: local
  use_controller_python:
    description:
      - With O(connection=local), set C(ansible_python_interpreter) of O(scope_group) to
        C({{ ansible_playbook_python }}), the controller's Python where psycopg is installed (the Python that
        Ansible would discover may lack it).
    type: bool
    default: true
  set_connection_vars:
    description:
      - Set C(yuantus_database_url_template), C(yuantus_database_url) and C(yuantus_identity_database_url) as
        variables of O(scope_group), from the options of the same names (those that are set).
      - Off by default so that no password enters the inventory; the playbooks then fall back to the
        controller's E(YUANTUS_*) environment. Turn it on when the URLs are given in this file (as a lookup or a
        vaulted value) rather than exported.
    type: bool
    default: false
  connect_timeout:
    description: Seconds to wait for the identity database or the database server.
    type: int
    default: 10
requirements:
  - psycopg >= 3 (not in C(single) mode)
notes:
  - Errors name the user, host, port and database, never the password or the URL.
  - Values read from the databases are marked unsafe, so that they are never templated.
seealso:
  - name: Yuantus tenancy
    description: How a scope maps to a database (MAPPING.md, section Tenancy).
    link: https://github.com/yuantus/relmigrate/blob/main/docs/DESIGN.md
"""

EXAMPLES = r"""
---
# inventories/db-per-tenant-org/yuantus.scopes.yml: every tenant/org database that exists on the server
plugin: yuantus.relmigrate.scopes
tenancy_mode: db-per-tenant-org
source: databases
# omitted: YUANTUS_DATABASE_URL_TEMPLATE from the environment
database_url_template: "{{ lookup('ansible.builtin.env', 'YUANTUS_DATABASE_URL_TEMPLATE') }}"
exclude_tenants: [sandbox-*]
keyed_groups:
  - key: yuantus_org_id
    prefix: org

---
# From the identity database: active tenants and organisations only
plugin: yuantus.relmigrate.scopes
tenancy_mode: db-per-tenant-org
source: identity
identity_database_url: "{{ lookup('ansible.builtin.env', 'YUANTUS_IDENTITY_DATABASE_URL') }}"
include_tenants: [tenant-1, tenant-2]

---
# Put one tenant's scopes behind a bastion (run the modules there instead of on the controller)
plugin: yuantus.relmigrate.scopes
tenancy_mode: db-per-tenant
compose:
  ansible_connection: "'ssh' if yuantus_tenant_id == 'tenant-eu' else 'local'"
  ansible_host: "'bastion-eu.example.com' if yuantus_tenant_id == 'tenant-eu' else omit"

# ansible-inventory -i inventories/db-per-tenant-org/yuantus.scopes.yml --graph
# ansible-playbook -i inventories/db-per-tenant-org/yuantus.scopes.yml playbooks/dry_run.yml -l tenant-1
"""

import fnmatch
import os

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.template import trust_as_template
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import (
    HAS_PSYCOPG,
    ConnectionTarget,
    DatabaseError,
    connect,
    error_text,
    parse_database_url,
    psycopg,
)
from ansible_collections.yuantus.relmigrate.plugins.module_utils.tenancy import (
    DEFAULT_ID,
    TenancyError,
    resolve_scope_url,
    sanitize_id,
    template_database_pattern,
)

display = Display()

APPLICATION_NAME = "yuantus.relmigrate.inventory"
SCOPE_SEPARATOR = "__"
# The URL options, the variable each becomes with set_connection_vars, and its environment fallback.
URL_OPTIONS = (
    ("database_url", "yuantus_database_url", "YUANTUS_DATABASE_URL"),
    ("database_url_template", "yuantus_database_url_template", "YUANTUS_DATABASE_URL_TEMPLATE"),
    ("identity_database_url", "yuantus_identity_database_url", "YUANTUS_IDENTITY_DATABASE_URL"),
)

IDENTITY_QUERY = """
SELECT t.id, o.id
FROM public.auth_tenants AS t
LEFT JOIN public.auth_organizations AS o
  ON o.tenant_id = t.id AND (o.is_active OR %(inactive)s)
WHERE t.is_active OR %(inactive)s
ORDER BY t.id, o.id
"""
DATABASES_QUERY = """
SELECT datname FROM pg_catalog.pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY datname
"""


class Scope(object):
    """One database scope: the ids as found (``tenant_id``, ``org_id``) and the inventory host name."""

    def __init__(self, mode, tenant_id=None, org_id=None, single_host_name="yuantus"):
        self.mode = mode
        self.tenant_id = tenant_id
        self.org_id = org_id if mode == "db-per-tenant-org" else None
        if mode == "single":
            self.name = single_host_name
        elif mode == "db-per-tenant":
            self.name = sanitize_id(tenant_id)
        else:
            self.name = sanitize_id(tenant_id) + SCOPE_SEPARATOR + sanitize_id(org_id)

    @property
    def tenant_group(self):
        """The tenant group name (the sanitised tenant id), or None outside ``db-per-tenant-org``."""
        return sanitize_id(self.tenant_id) if self.mode == "db-per-tenant-org" else None


def _matches(value, patterns):
    """True when ``value`` (raw or sanitised) matches one of the fnmatch ``patterns``."""
    if value is None:
        return False
    candidates = {str(value), sanitize_id(value)}
    return any(fnmatch.fnmatchcase(candidate, pattern) for pattern in patterns for candidate in candidates)


def _keep(value, include, exclude):
    """Apply one include/exclude pair of pattern lists to ``value``."""
    if include and not _matches(value, include):
        return False
    return not (exclude and _matches(value, exclude))


class InventoryModule(BaseInventoryPlugin, Constructable):
    """Discover Yuantus scopes and add them as hosts (see DOCUMENTATION)."""

    NAME = "yuantus.relmigrate.scopes"

    def verify_file(self, path):
        """Accept only readable files named ``*scopes.yml`` / ``*scopes.yaml``."""
        if not super(InventoryModule, self).verify_file(path):
            return False
        if path.endswith(("scopes.yml", "scopes.yaml")):
            return True
        self.display.vvv("yuantus.relmigrate.scopes: skipping %s, its name does not end with scopes.yml" % path)
        return False

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        mode = self.get_option("tenancy_mode") or "single"
        self._populate(self._filter(self._discover(mode)), mode)

    # -- options -------------------------------------------------------------------------------------------------
    def _url_option(self, name):
        """The option's value rendered (a lookup evaluated, a vaulted value decrypted), or None when unset."""
        value = self.get_option(name)
        if value is None or value == "":
            return None
        try:
            rendered = self.templar.template(value)
        except AnsibleError as exc:
            # The expression (not its result) may be quoted by Ansible; the result, a URL, never is here.
            raise AnsibleParserError("yuantus.relmigrate.scopes: option %s could not be rendered: %s"
                                     % (name, exc.__class__.__name__))
        return None if rendered in (None, "") else str(rendered)

    def _template(self, required_for=None):
        template = self._url_option("database_url_template")
        if template is None and required_for:
            raise AnsibleParserError("yuantus.relmigrate.scopes: %s needs database_url_template "
                                     "(or YUANTUS_DATABASE_URL_TEMPLATE in the environment)" % required_for)
        return template

    # -- discovery -----------------------------------------------------------------------------------------------
    def _discover(self, mode):
        """Return the scopes of ``mode`` from the configured source (a list of ``Scope``)."""
        if mode == "single":
            return [Scope("single", single_host_name=self.get_option("single_host_name"))]
        if not HAS_PSYCOPG:
            raise AnsibleParserError("yuantus.relmigrate.scopes: source %s needs the Python library psycopg "
                                     "(version 3) on the controller" % self.get_option("source"))
        if self.get_option("source") == "identity":
            rows = self._fetch_identity_rows(mode)
            scopes = [Scope(mode, tenant_id=tenant, org_id=org) for tenant, org in rows
                      if mode == "db-per-tenant" or org is not None]
        else:
            scopes = [Scope(mode, tenant_id=tenant, org_id=org) for tenant, org in self._fetch_database_ids(mode)]
        unique = {}
        for scope in scopes:
            # Two stored ids that sanitise alike name the same database: one scope.
            unique.setdefault(scope.name, scope)
        return list(unique.values())

    def _connect(self, target):
        params = dict(connect_timeout=self.get_option("connect_timeout"), application_name=APPLICATION_NAME,
                      lock_timeout=0, statement_timeout=60)
        try:
            return connect(target, params, autocommit=True)
        except DatabaseError as exc:
            raise AnsibleParserError("yuantus.relmigrate.scopes: %s" % exc)

    def _query(self, target, query, params=None):
        """Run ``query`` on ``target``; return all rows. Errors name the target, never the password."""
        conn = self._connect(target)
        try:
            return conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise AnsibleParserError("yuantus.relmigrate.scopes: query on %s failed: %s"
                                     % (target.describe(), error_text(exc, target)))
        finally:
            conn.close()

    def _fetch_identity_rows(self, mode):
        """``(tenant_id, org_id or None)`` rows of the identity database (active ones unless told otherwise)."""
        url = self._url_option("identity_database_url")
        if url is None:
            raise AnsibleParserError("yuantus.relmigrate.scopes: source identity needs identity_database_url "
                                     "(or YUANTUS_IDENTITY_DATABASE_URL in the environment)")
        target = self._parse(url, "identity_database_url")
        rows = self._query(target, IDENTITY_QUERY, {"inactive": bool(self.get_option("include_inactive"))})
        if mode == "db-per-tenant":
            return sorted(set((tenant, None) for tenant, _org in rows))
        return [tuple(row) for row in rows]

    def _fetch_database_ids(self, mode):
        """``(tenant_id, org_id or None)`` read from the names of the server's databases matching the template."""
        template = self._template(required_for="source databases")
        pattern = self._pattern(template, mode)
        server = self._parse(self._format(template, mode), "database_url_template")
        target = ConnectionTarget(server.host, server.port, self.get_option("maintenance_database"), server.user,
                                  server.password, server.query)
        found = []
        for (name,) in self._query(target, DATABASES_QUERY):
            match = pattern.match(name)
            if match:
                ids = match.groupdict()
                found.append((ids["tenant_id"], ids.get("org_id") if mode == "db-per-tenant-org" else None))
        return found

    @staticmethod
    def _parse(url, option):
        try:
            return parse_database_url(url)
        except DatabaseError as exc:
            raise AnsibleParserError("yuantus.relmigrate.scopes: option %s: %s" % (option, exc))

    @staticmethod
    def _format(template, mode, tenant_id="x", org_id="x"):
        try:
            return resolve_scope_url(mode, database_url_template=template, tenant_id=tenant_id, org_id=org_id)
        except TenancyError as exc:
            raise AnsibleParserError("yuantus.relmigrate.scopes: %s" % exc)

    def _pattern(self, template, mode):
        self._format(template, mode)  # validates the template for the mode, with Yuantus's messages
        fixed_org = DEFAULT_ID if mode == "db-per-tenant" else None
        try:
            pattern = template_database_pattern(template, lambda url: self._parse(url, "database_url_template")
                                                .database, org_id=fixed_org)
        except TenancyError as exc:
            raise AnsibleParserError("yuantus.relmigrate.scopes: %s" % exc)
        needed = {"tenant_id", "org_id"} if mode == "db-per-tenant-org" else {"tenant_id"}
        if not needed <= set(pattern.groupindex):
            raise AnsibleParserError(
                "yuantus.relmigrate.scopes: source databases needs the ids in the database name of "
                "database_url_template (not in the host or user); use source identity instead")
        return pattern

    # -- filters and population ----------------------------------------------------------------------------------
    def _filter(self, scopes):
        """Apply the include/exclude options; keep the order."""
        kept = []
        for scope in scopes:
            if scope.mode != "single":
                if not _keep(scope.tenant_id, self.get_option("include_tenants"),
                             self.get_option("exclude_tenants")):
                    continue
                if scope.mode == "db-per-tenant-org" and not _keep(
                        scope.org_id, self.get_option("include_orgs"), self.get_option("exclude_orgs")):
                    continue
            if not _keep(scope.name, self.get_option("include_scopes"), self.get_option("exclude_scopes")):
                continue
            kept.append(scope)
        return kept

    def _database_name(self, scope, template):
        if scope.mode == "single":
            url = self._url_option("database_url")
            return self._parse(url, "database_url").database if url else None
        if template is None:
            return None
        url = self._format(template, scope.mode, scope.tenant_id, scope.org_id or DEFAULT_ID)
        return self._parse(url, "database_url_template").database

    def _add_group(self, name, parent=None):
        """Add group ``name`` (under ``parent``); return the name Ansible really used."""
        used = self.inventory.add_group(name)
        if used != name:
            display.warning(
                "yuantus.relmigrate.scopes: Ansible renamed group %s to %s (force_valid_group_names is not "
                "'ignore'), so '-l %s' does not select it; use '-l %s' or \"-l '%s__*'\""
                % (name, used, name, used, name))
        if parent:
            self.inventory.add_child(parent, used)
        return used

    def _group_vars(self):
        """Variables of the scope group: the connection, and the URL options only when asked to."""
        group_vars = {}
        if self.get_option("connection"):
            group_vars["ansible_connection"] = self.get_option("connection")
            if self.get_option("connection") == "local" and self.get_option("use_controller_python"):
                # Our own constant, a template by design: rendered for each task.
                group_vars["ansible_python_interpreter"] = trust_as_template("{{ ansible_playbook_python }}")
        if self.get_option("set_connection_vars"):
            for option, var, _env in URL_OPTIONS:
                value = self.get_option(option)
                if value not in (None, ""):
                    # As given: a lookup or a vaulted value stays a reference, rendered when a task uses it.
                    group_vars[var] = value
        return group_vars

    def _populate(self, scopes, mode):
        """Add ``scopes`` as hosts with their groups and variables, then apply compose/groups/keyed_groups."""
        strict = self.get_option("strict")
        scope_group = self._add_group(self.get_option("scope_group"))
        for key, value in self._group_vars().items():
            self.inventory.set_variable(scope_group, key, value)
        template = self._template() if self.get_option("database_url_template") else None
        for scope in scopes:
            parent = scope_group
            if scope.tenant_group and self.get_option("tenant_groups"):
                if scope.tenant_group in ("all", "ungrouped", scope_group):
                    raise AnsibleParserError("yuantus.relmigrate.scopes: tenant id %r would be a group named like "
                                             "a reserved or the scope group; exclude it or set tenant_groups "
                                             "false" % scope.tenant_group)
                parent = self._add_group(scope.tenant_group, scope_group)
            host = self.inventory.add_host(scope.name, group=parent)
            hostvars = {"yuantus_tenancy_mode": mode}
            if mode != "single":
                hostvars["yuantus_tenant_id"] = scope.tenant_id
            if mode == "db-per-tenant-org":
                hostvars["yuantus_org_id"] = scope.org_id
            database = self._database_name(scope, template)
            if database:
                hostvars["yuantus_database_name"] = database
            for key, value in hostvars.items():
                # Ids come from databases (or the configuration): never templates.
                self.inventory.set_variable(host, key, wrap_var(value))
            variables = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
        self._warn_unreachable_urls()

    def _warn_unreachable_urls(self):
        """Warn when URLs given in the file will not reach the playbooks (neither set as vars nor exported)."""
        if self.get_option("set_connection_vars") or self.get_option("tenancy_mode") == "single":
            return
        value = self._url_option("database_url_template")
        if value and value != os.environ.get("YUANTUS_DATABASE_URL_TEMPLATE"):
            display.warning("yuantus.relmigrate.scopes: database_url_template is set in the inventory file but "
                            "set_connection_vars is false; the playbooks read YUANTUS_DATABASE_URL_TEMPLATE from the "
                            "environment, which does not hold it")
