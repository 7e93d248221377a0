# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one tenancy resolver: which database a Yuantus scope lives in.

Mirrors Yuantus's own rules (MAPPING.md, "Tenancy") so that a scope resolves to exactly the database the
application uses. Pure functions, no I/O: shared by the modules and the ``scopes`` inventory plugin.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import string

TENANCY_MODES = ("single", "db-per-tenant", "db-per-tenant-org")
DEFAULT_ID = "default"
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class TenancyError(ValueError):
    """A scope cannot be resolved from the settings given; the message says which setting is wrong."""


def sanitize_id(value):
    """Return ``value`` made safe for a database name, exactly as Yuantus does it.

    Every character outside ``A-Z a-z 0-9 - _`` becomes ``_`` after the surrounding spaces are stripped; an
    empty (or missing) result becomes ``default``.
    """
    text = "" if value is None else str(value).strip()
    text = _UNSAFE_ID_CHARS.sub("_", text)
    return text or DEFAULT_ID


def template_fields(template):
    """Return the set of ``str.format`` field names used in ``template`` (e.g. ``{'tenant_id', 'org_id'}``)."""
    try:
        return set(part[1] for part in string.Formatter().parse(template) if part[1] is not None)
    except ValueError as exc:
        raise TenancyError("database_url_template is not a valid format string: %s" % exc)


def resolve_scope_url(tenancy_mode, database_url=None, database_url_template=None, tenant_id=None, org_id=None):
    """Return the SQLAlchemy-style URL of the scope's database.

    ``single`` uses ``database_url``; ``db-per-tenant`` and ``db-per-tenant-org`` format
    ``database_url_template`` with the sanitised ``tenant_id`` and ``org_id`` (``default`` for a missing org in
    ``db-per-tenant``). Raises ``TenancyError`` naming the missing or wrong setting; the message never contains
    the URL itself, which may hold a password.
    """
    mode = tenancy_mode or "single"
    if mode not in TENANCY_MODES:
        raise TenancyError(
            "unknown tenancy_mode %r: expected one of %s" % (mode, ", ".join(TENANCY_MODES))
        )
    if mode == "single":
        if not database_url:
            raise TenancyError(
                "tenancy_mode single needs database_url (or YUANTUS_DATABASE_URL in the environment)"
            )
        return database_url

    if not database_url_template:
        raise TenancyError(
            "tenancy_mode %s needs database_url_template (or YUANTUS_DATABASE_URL_TEMPLATE in the environment)"
            % mode
        )
    if tenant_id is None or str(tenant_id).strip() == "":
        raise TenancyError("tenancy_mode %s needs tenant_id" % mode)
    if mode == "db-per-tenant-org" and (org_id is None or str(org_id).strip() == ""):
        raise TenancyError("tenancy_mode db-per-tenant-org needs org_id")

    fields = template_fields(database_url_template)
    unknown = sorted(fields - {"tenant_id", "org_id"})
    if unknown:
        raise TenancyError(
            "database_url_template has unknown placeholder(s) %s; only {tenant_id} and {org_id} are allowed"
            % ", ".join("{%s}" % name for name in unknown)
        )
    if "tenant_id" not in fields:
        raise TenancyError("database_url_template has no {tenant_id} placeholder (tenancy_mode %s)" % mode)
    if mode == "db-per-tenant-org" and "org_id" not in fields:
        raise TenancyError("database_url_template has no {org_id} placeholder (tenancy_mode db-per-tenant-org)")

    return database_url_template.format(tenant_id=sanitize_id(tenant_id), org_id=sanitize_id(org_id))


def template_database_pattern(database_url_template, database_name_of, org_id=None):
    """Return a compiled regex matching database names produced by the template, capturing the ids.

    ``database_name_of`` extracts the database name from a URL (the caller's URL parser), so this module stays
    free of URL parsing. Groups are named ``tenant_id`` and ``org_id`` (when the database name uses them); a
    placeholder used twice must match the same id twice. With ``org_id`` given (``db-per-tenant`` mode, where
    Yuantus always formats the org as ``default``), ``{org_id}`` matches only that id, sanitised, and is not a
    group. Ids are matched lazily: a sanitised id containing the template's own separator is ambiguous, and the
    shortest tenant id wins. Raises ``TenancyError`` when the template is not a valid format string.
    """
    template_fields(database_url_template)  # validates the format string with a clear message
    marker_tenant, marker_org = "\x00TENANT\x00", "\x00ORG\x00"
    name = database_name_of(database_url_template.format(tenant_id=marker_tenant, org_id=marker_org))
    pattern = re.escape(name)
    for marker, group, fixed in ((marker_tenant, "tenant_id", None), (marker_org, "org_id", org_id)):
        escaped = re.escape(marker)
        if fixed is not None:
            pattern = pattern.replace(escaped, re.escape(sanitize_id(fixed)))
            continue
        pattern = pattern.replace(escaped, "(?P<%s>[A-Za-z0-9_-]+?)" % group, 1)
        pattern = pattern.replace(escaped, "(?P=%s)" % group)
    return re.compile("^%s$" % pattern)
