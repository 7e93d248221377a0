"""URL parsing (both parsers agree, URL by URL), redaction and the connection options: no database needed."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.yuantus.relmigrate.plugins.filter.scope_target import FilterModule, scope_target
from ansible_collections.yuantus.relmigrate.plugins.module_utils import database
from ansible_collections.yuantus.relmigrate.plugins.module_utils.database import (
    ConnectionTarget,
    DatabaseError,
    _parse_with_sqlalchemy,
    _parse_without_sqlalchemy,
    _session_options,
    connection_argument_spec,
    error_text,
    parse_database_url,
    redact,
)

# url -> (backend, host, port, database, user, password, query); None -> malformed (DatabaseError).
URLS = {
    "postgresql+psycopg://yuantus:pw@db.example:5432/yuantus":
        ("postgresql", "db.example", 5432, "yuantus", "yuantus", "pw", {}),
    "postgresql://yuantus@db/yuantus": ("postgresql", "db", None, "yuantus", "yuantus", None, {}),
    "postgres://u:p@h/db": ("postgres", "h", None, "db", "u", "p", {}),
    "postgresql+psycopg2://u:p@h:1/db": ("postgresql", "h", 1, "db", "u", "p", {}),
    "postgresql+asyncpg://u:p@h/db": ("postgresql", "h", None, "db", "u", "p", {}),
    # percent-encoded user, password and database
    "postgres://u%40x:p%40ss%2Fw%3Ard@h:6432/d%20b": ("postgres", "h", 6432, "d b", "u@x", "p@ss/w:rd", {}),
    # unencoded specials in the password: both parsers follow SQLAlchemy's grammar
    "postgresql+psycopg://u:p#a/s?s:w@h/db": ("postgresql", "h", None, "db", "u", "p#a/s?s:w", {}),
    "postgresql+psycopg://u:p w@h/db": ("postgresql", "h", None, "db", "u", "p w", {}),
    "postgresql+psycopg://u:p:q@h/db": ("postgresql", "h", None, "db", "u", "p:q", {}),
    "postgresql+psycopg://u:@h/db": ("postgresql", "h", None, "db", "u", "", {}),
    "postgresql+psycopg://@h/db": ("postgresql", "h", None, "db", "", None, {}),
    "postgresql+psycopg://u:p@[::1]:5433/db": ("postgresql", "::1", 5433, "db", "u", "p", {}),
    "postgresql+psycopg://u:p@[fe80::1%25eth0]/db": ("postgresql", "fe80::1%25eth0", None, "db", "u", "p", {}),
    "postgresql+psycopg://u:p@DB.Example.COM/db": ("postgresql", "DB.Example.COM", None, "db", "u", "p", {}),
    "postgresql+psycopg://u:p@%2Ftmp%2Fsock/db": ("postgresql", "%2Ftmp%2Fsock", None, "db", "u", "p", {}),
    "postgresql:///db": ("postgresql", None, None, "db", None, None, {}),
    "postgresql+psycopg://u:p@/db?host=/run/postgresql":
        ("postgresql", None, None, "db", "u", "p", {"host": "/run/postgresql"}),
    "postgresql+psycopg://u:p@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem":
        ("postgresql", "h", None, "db", "u", "p", {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem"}),
    "postgresql+psycopg://u:p@h/db?a=1&a=2&b=": ("postgresql", "h", None, "db", "u", "p", {"a": ("1", "2")}),
    "postgresql+psycopg://u:p@h/db?": ("postgresql", "h", None, "db", "u", "p", {}),
    "postgresql+psycopg://u:p@h/db/extra": ("postgresql", "h", None, "db/extra", "u", "p", {}),
    "postgresql+psycopg://u:p@h/db#x": ("postgresql", "h", None, "db#x", "u", "p", {}),
    "postgresql+psycopg://u:p@h/": ("postgresql", "h", None, "", "u", "p", {}),
    "postgresql+psycopg://u:p@h": ("postgresql", "h", None, None, "u", "p", {}),
    "postgresql+psycopg://u:p@h:99999/db": ("postgresql", "h", 99999, "db", "u", "p", {}),
    "mysql+pymysql://u:p@h/db": ("mysql", "h", None, "db", "u", "p", {}),
    "sqlite:///tmp/x.db": ("sqlite", None, None, "tmp/x.db", None, None, {}),
    "postgresql+psycopg://u:p@h:/db": None,
    "postgresql+psycopg://u:p@h:abc/db": None,
    "postgresql+psycopg://u:p@h:5432x/db": None,
    "not a url": None,
    "://u:p@h/db": None,
    "postgresql:/db": None,
    "postgresql-x://u:p@h/db": None,
}


def _parse(parser, url):
    try:
        return parser(url)
    except DatabaseError as exc:
        assert "malformed" in str(exc)
        return None


@pytest.mark.parametrize("url", list(URLS))
def test_both_parsers_agree(url: str) -> None:
    expected = URLS[url]
    assert _parse(_parse_with_sqlalchemy, url) == expected
    assert _parse(_parse_without_sqlalchemy, url) == expected


@pytest.mark.parametrize("has_sqlalchemy", [True, False])
def test_parse_database_url(monkeypatch: pytest.MonkeyPatch, has_sqlalchemy: bool) -> None:
    monkeypatch.setattr(database, "HAS_SQLALCHEMY", has_sqlalchemy)
    target = parse_database_url("  postgresql+psycopg://yuantus:s%40cret@db.example:6543/yuantus?sslmode=require ")
    assert (target.host, target.port, target.database, target.user, target.password, target.query) == (
        "db.example", 6543, "yuantus", "yuantus", "s@cret", {"sslmode": "require"})
    assert target.describe() == "yuantus@db.example:6543/yuantus"
    assert target.public() == {"host": "db.example", "port": 6543, "database": "yuantus", "user": "yuantus"}


@pytest.mark.parametrize("has_sqlalchemy", [True, False])
@pytest.mark.parametrize(("url", "message"), [
    ("", "the database URL is empty"),
    ("   ", "the database URL is empty"),
    (None, "the database URL is empty"),
    ("mysql://u:Secret-Pw-1@h/db", "not a PostgreSQL URL (its scheme names 'mysql')"),
    ("postgresql+psycopg://u:Secret-Pw-1@h/", "the database URL names no database"),
    ("postgresql+psycopg://u:Secret-Pw-1@h", "the database URL names no database"),
    ("postgresql+psycopg://u:Secret-Pw-1@h:port/db", "the database URL is malformed"),
    ("u:Secret-Pw-1@h/db", "the database URL is malformed"),
])
def test_parse_database_url_errors(monkeypatch: pytest.MonkeyPatch, has_sqlalchemy: bool, url: str | None,
                                   message: str) -> None:
    monkeypatch.setattr(database, "HAS_SQLALCHEMY", has_sqlalchemy)
    with pytest.raises(DatabaseError) as caught:
        parse_database_url(url)
    assert message in str(caught.value)
    assert "Secret-Pw-1" not in str(caught.value)


@pytest.mark.parametrize(("text", "secrets", "expected"), [
    ("password=hunter2 failed", ["hunter2"], "password=******** failed"),
    ("hunter2 and hunter2", ["hunter2"], "******** and ********"),
    ("a b", ["", None], "a b"),
    ("a b", [], "a b"),
    ("x p@ss y s3", ["p@ss", "s3"], "x ******** y ********"),
    (ValueError("boom pw1"), ["pw1"], "boom ********"),
    (None, ["x"], "None"),
])
def test_redact(text: object, secrets: list[str | None], expected: str) -> None:
    assert redact(text, secrets) == expected


def test_error_text_first_line_without_password() -> None:
    target = ConnectionTarget("h", 5432, "db", "u", "Pw-xyz-1", {})
    exc = RuntimeError("connection failed: Pw-xyz-1 rejected\nDETAIL: more Pw-xyz-1\nHINT: x")
    assert error_text(exc, target) == "connection failed: ******** rejected"
    assert error_text(RuntimeError(""), target) == "RuntimeError"
    assert error_text(RuntimeError("plain")) == "plain"


def test_describe_without_parts() -> None:
    target = ConnectionTarget(None, None, "db", None, "pw", {})
    assert target.describe() == "(default user)@(local socket):5432/db"
    assert "pw" not in repr(target.public())


def test_connection_argument_spec() -> None:
    spec = connection_argument_spec()
    assert set(spec) == {"database_url", "tenancy_mode", "database_url_template", "tenant_id", "org_id",
                         "connect_timeout", "lock_timeout", "statement_timeout", "application_name"}
    assert spec["database_url"]["no_log"] is True and spec["database_url_template"]["no_log"] is True
    assert spec["database_url"]["fallback"][1] == ["YUANTUS_DATABASE_URL"]
    assert spec["database_url_template"]["fallback"][1] == ["YUANTUS_DATABASE_URL_TEMPLATE"]
    assert spec["tenancy_mode"]["fallback"][1] == ["YUANTUS_TENANCY_MODE"]
    assert spec["tenancy_mode"]["choices"] == ["single", "db-per-tenant", "db-per-tenant-org"]
    assert (spec["connect_timeout"]["default"], spec["lock_timeout"]["default"],
            spec["statement_timeout"]["default"], spec["application_name"]["default"]) == (
        10, 10, 0, "yuantus.relmigrate")


@pytest.mark.parametrize(("params", "expected"), [
    ({}, "-c lock_timeout=0s -c statement_timeout=0s"),
    ({"lock_timeout": 10, "statement_timeout": 0}, "-c lock_timeout=10s -c statement_timeout=0s"),
    ({"lock_timeout": 3, "statement_timeout": 600}, "-c lock_timeout=3s -c statement_timeout=600s"),
])
def test_session_options(params: dict[str, int], expected: str) -> None:
    assert _session_options(params) == expected


# -- the scope_target filter (plugins/filter/scope_target.py) -------------------------------------------------------
URL = "postgresql+psycopg://yuantus:Filter-Pw-7@db.example:6543/yuantus?sslmode=require"
TEMPLATE = "postgresql+psycopg://yuantus:Filter-Pw-7@db.example/yuantus_mt_pg__{tenant_id}__{org_id}"


@pytest.fixture
def no_yuantus_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("YUANTUS_TENANCY_MODE", "YUANTUS_DATABASE_URL", "YUANTUS_DATABASE_URL_TEMPLATE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_scope_target_single(no_yuantus_env: pytest.MonkeyPatch) -> None:
    target = scope_target({"tenancy_mode": "single", "database_url": URL, "database_url_template": "",
                           "tenant_id": "", "org_id": ""})
    assert target == {"host": "db.example", "port": 6543, "database": "yuantus", "user": "yuantus",
                      "tenancy_mode": "single"}


def test_scope_target_from_environment(no_yuantus_env: pytest.MonkeyPatch) -> None:
    no_yuantus_env.setenv("YUANTUS_TENANCY_MODE", "db-per-tenant-org")
    no_yuantus_env.setenv("YUANTUS_DATABASE_URL_TEMPLATE", TEMPLATE)
    target = scope_target({"tenancy_mode": "", "database_url": "", "database_url_template": "", "tenant_id": "t 1",
                           "org_id": "o-1"})
    assert target == {"host": "db.example", "port": 5432, "database": "yuantus_mt_pg__t_1__o-1",
                      "user": "yuantus", "tenancy_mode": "db-per-tenant-org", "tenant_id": "t_1", "org_id": "o-1"}
    assert scope_target({"tenant_id": "t 1", "org_id": "o-1"}) == target


@pytest.mark.parametrize(("scope", "message"), [
    ("not a dict", "a scope must be a dict"),
    ({"tenancy_mode": "db-per-tenant-org", "database_url_template": TEMPLATE, "tenant_id": "t"}, "needs org_id"),
    ({"tenancy_mode": "single"}, "needs database_url"),
    ({"database_url": "mysql://u:Filter-Pw-7@h/db"}, "not a PostgreSQL URL"),
])
def test_filter_errors_name_the_setting_not_the_password(no_yuantus_env: pytest.MonkeyPatch, scope: object,
                                                         message: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        scope_target(scope)
    assert message in str(caught.value) and "Filter-Pw-7" not in str(caught.value)


def test_filter_module_exports() -> None:
    assert set(FilterModule().filters()) == {"scope_target"}
