"""The tenancy resolver (MAPPING.md, "Tenancy"), table-driven: sanitising, URL resolution, every error."""

from __future__ import annotations

import pytest
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import parse_database_url, resolve_target
from ansible_collections.yuantus.relmigrate.plugins.module_utils.tenancy import (
    TENANCY_MODES,
    TenancyError,
    resolve_scope_url,
    sanitize_id,
    template_database_pattern,
    template_fields,
)

SECRET = "Tpl-S3cret-pw"
TEMPLATE = f"postgresql+psycopg://yuantus:{SECRET}@db.example:5432/yuantus_mt_pg__{{tenant_id}}__{{org_id}}"
TENANT_TEMPLATE = f"postgresql+psycopg://yuantus:{SECRET}@db.example:5432/yuantus_mt_pg__{{tenant_id}}"
SINGLE_URL = f"postgresql+psycopg://yuantus:{SECRET}@db.example:5432/yuantus"


@pytest.mark.parametrize(("raw", "expected"), [
    ("tenant-1", "tenant-1"),
    ("org_1", "org_1"),
    ("ABCxyz019", "ABCxyz019"),
    ("  tenant-1  ", "tenant-1"),          # surrounding spaces stripped first
    ("\ttenant\n", "tenant"),              # any surrounding whitespace
    ("ten ant", "ten_ant"),                # inner space is unsafe
    ("a.b/c", "a_b_c"),
    ("t;DROP DATABASE x", "t_DROP_DATABASE_x"),
    ("{tenant_id}", "_tenant_id_"),        # no format injection
    ("ümlaut", "_mlaut"),                  # non-ASCII letters are unsafe
    ("租户", "__"),
    ("a@b:c%d", "a_b_c_d"),
    ("", "default"),
    ("   ", "default"),
    (None, "default"),
    (42, "42"),
])
def test_sanitize_id(raw: object, expected: str) -> None:
    assert sanitize_id(raw) == expected


@pytest.mark.parametrize(("mode", "kwargs", "database"), [
    ("single", {"database_url": SINGLE_URL}, "yuantus"),
    (None, {"database_url": SINGLE_URL}, "yuantus"),                    # no mode means single
    ("", {"database_url": SINGLE_URL}, "yuantus"),
    ("single", {"database_url": SINGLE_URL, "database_url_template": TEMPLATE, "tenant_id": "t"}, "yuantus"),
    ("db-per-tenant-org", {"tenant_id": "tenant-1", "org_id": "org-1"}, "yuantus_mt_pg__tenant-1__org-1"),
    ("db-per-tenant-org", {"tenant_id": " tenant 1 ", "org_id": "org.1"}, "yuantus_mt_pg__tenant_1__org_1"),
    ("db-per-tenant", {"tenant_id": "tenant-1"}, "yuantus_mt_pg__tenant-1__default"),   # missing org: default
    ("db-per-tenant", {"tenant_id": "tenant-1", "org_id": ""}, "yuantus_mt_pg__tenant-1__default"),
    ("db-per-tenant", {"tenant_id": "tenant-1", "org_id": "org-9"}, "yuantus_mt_pg__tenant-1__org-9"),
    ("db-per-tenant", {"tenant_id": "t/1", "database_url_template": TENANT_TEMPLATE}, "yuantus_mt_pg__t_1"),
])
def test_resolve_scope_url(mode: str | None, kwargs: dict[str, str], database: str) -> None:
    kwargs = dict(kwargs)
    if mode not in ("single", None, "") and "database_url_template" not in kwargs:
        kwargs["database_url_template"] = TEMPLATE
    url = resolve_scope_url(mode, **kwargs)
    assert parse_database_url(url).database == database


@pytest.mark.parametrize(("mode", "kwargs", "message"), [
    ("multi", {"database_url": SINGLE_URL}, "unknown tenancy_mode 'multi'"),
    ("single", {}, "tenancy_mode single needs database_url (or YUANTUS_DATABASE_URL"),
    ("single", {"database_url": ""}, "tenancy_mode single needs database_url"),
    ("db-per-tenant", {"tenant_id": "t"},
     "tenancy_mode db-per-tenant needs database_url_template (or YUANTUS_DATABASE_URL_TEMPLATE"),
    ("db-per-tenant-org", {"database_url": SINGLE_URL, "tenant_id": "t", "org_id": "o"},
     "needs database_url_template"),
    ("db-per-tenant", {"database_url_template": TEMPLATE}, "tenancy_mode db-per-tenant needs tenant_id"),
    ("db-per-tenant", {"database_url_template": TEMPLATE, "tenant_id": "  "}, "needs tenant_id"),
    ("db-per-tenant-org", {"database_url_template": TEMPLATE, "org_id": "o"}, "needs tenant_id"),
    ("db-per-tenant-org", {"database_url_template": TEMPLATE, "tenant_id": "t"},
     "tenancy_mode db-per-tenant-org needs org_id"),
    ("db-per-tenant-org", {"database_url_template": TEMPLATE, "tenant_id": "t", "org_id": ""}, "needs org_id"),
    ("db-per-tenant-org", {"database_url_template": TENANT_TEMPLATE, "tenant_id": "t", "org_id": "o"},
     "database_url_template has no {org_id} placeholder"),
    ("db-per-tenant", {"database_url_template": SINGLE_URL, "tenant_id": "t"},
     "database_url_template has no {tenant_id} placeholder"),
    ("db-per-tenant", {"database_url_template": TEMPLATE.replace("{org_id}", "{org}"), "tenant_id": "t"},
     "unknown placeholder(s) {org}"),
    ("db-per-tenant", {"database_url_template": TEMPLATE + "_{0}", "tenant_id": "t"},
     "unknown placeholder(s) {0}"),
    ("db-per-tenant", {"database_url_template": TEMPLATE + "_{}", "tenant_id": "t"}, "unknown placeholder(s) {}"),
    ("db-per-tenant", {"database_url_template": TEMPLATE + "_{tenant_id", "tenant_id": "t"},
     "database_url_template is not a valid format string"),
    ("db-per-tenant", {"database_url_template": TEMPLATE + "}", "tenant_id": "t"},
     "database_url_template is not a valid format string"),
])
def test_resolve_scope_url_errors(mode: str, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(TenancyError) as caught:
        resolve_scope_url(mode, **kwargs)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_tenancy_modes_are_yuantus_names() -> None:
    assert TENANCY_MODES == ("single", "db-per-tenant", "db-per-tenant-org")


def test_template_fields() -> None:
    assert template_fields(TEMPLATE) == {"tenant_id", "org_id"}
    assert template_fields("x_{tenant_id}_{tenant_id}") == {"tenant_id"}
    assert template_fields("plain") == set()


@pytest.mark.parametrize(("mode", "tenant", "org", "scope_ids"), [
    ("single", None, None, None),
    ("db-per-tenant", "tenant 1", None, ("tenant_1", "default")),
    ("db-per-tenant-org", "tenant-1", "org/1", ("tenant-1", "org_1")),
])
def test_resolve_target_scope_has_no_password(mode: str, tenant: str | None, org: str | None,
                                              scope_ids: tuple[str, str] | None) -> None:
    params = {"tenancy_mode": mode, "database_url": SINGLE_URL, "database_url_template": TEMPLATE,
              "tenant_id": tenant, "org_id": org}
    target, scope = resolve_target(params)
    assert target.password == SECRET
    assert SECRET not in repr(scope) and SECRET not in target.describe() and SECRET not in repr(target.public())
    assert scope["tenancy_mode"] == mode
    assert scope["host"] == "db.example" and scope["port"] == 5432 and scope["user"] == "yuantus"
    if scope_ids is None:
        assert "tenant_id" not in scope and scope["database"] == "yuantus"
    else:
        assert (scope["tenant_id"], scope["org_id"]) == scope_ids
        assert scope["database"] == f"yuantus_mt_pg__{scope_ids[0]}__{scope_ids[1]}"


def test_resolve_target_defaults_to_single() -> None:
    scope = resolve_target({"database_url": SINGLE_URL})[1]
    assert scope["tenancy_mode"] == "single"


def _database_name(url: str) -> str:
    return parse_database_url(url).database


@pytest.mark.parametrize(("template", "org_id", "name", "groups"), [
    (TEMPLATE, None, "yuantus_mt_pg__tenant-1__org-1", {"tenant_id": "tenant-1", "org_id": "org-1"}),
    (TEMPLATE, None, "yuantus_mt_pg__t_1__default", {"tenant_id": "t_1", "org_id": "default"}),
    (TEMPLATE, None, "yuantus_mt_pg__tenant-1", None),
    (TEMPLATE, None, "other__tenant-1__org-1", None),
    (TEMPLATE, "default", "yuantus_mt_pg__tenant-1__default", {"tenant_id": "tenant-1"}),
    (TEMPLATE, "default", "yuantus_mt_pg__tenant-1__org-1", None),
    (TENANT_TEMPLATE, None, "yuantus_mt_pg__acme", {"tenant_id": "acme"}),
])
def test_template_database_pattern(template: str, org_id: str | None, name: str,
                                   groups: dict[str, str] | None) -> None:
    match = template_database_pattern(template, _database_name, org_id=org_id).match(name)
    assert (match.groupdict() if match else None) == groups


def test_template_database_pattern_round_trips_resolve() -> None:
    pattern = template_database_pattern(TEMPLATE, _database_name)
    for tenant, org in (("tenant-1", "org-1"), ("a b", "c.d"), ("x", "")):
        name = _database_name(resolve_scope_url("db-per-tenant-org", database_url_template=TEMPLATE,
                                                tenant_id=tenant, org_id=org or "o"))
        match = pattern.match(name)
        assert match and match.group("tenant_id") == sanitize_id(tenant)


def test_template_database_pattern_invalid_template() -> None:
    with pytest.raises(TenancyError, match="not a valid format string"):
        template_database_pattern("x_{tenant_id", _database_name)
