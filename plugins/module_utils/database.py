# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Yuantus relmigrate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one database layer of yuantus.relmigrate: connection options, URL parsing, redaction, connect.

Every module takes the same connection options (``connection_argument_spec``), resolves its scope with the
tenancy resolver and connects through ``connect``. Nothing here ever puts a password into a message: errors name
the host, port, database and user only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.yuantus.relmigrate.plugins.module_utils.tenancy import (
    TENANCY_MODES,
    TenancyError,
    resolve_scope_url,
    sanitize_id,
)

try:
    import psycopg

    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    psycopg = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

try:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError as SqlalchemyArgumentError

    HAS_SQLALCHEMY = True
except ImportError:
    # A managed host may have only python3 and psycopg; the fallback parser below reads the same URL grammar.
    make_url = None
    SqlalchemyArgumentError = ValueError
    HAS_SQLALCHEMY = False

try:
    from urllib.parse import parse_qsl, unquote
except ImportError:  # pragma: no cover - Python 2 is not supported, this keeps the sanity import test quiet
    unquote = parse_qsl = None

APPLICATION_NAME = "yuantus.relmigrate"
POSTGRES_SCHEMES = ("postgresql", "postgres")


class DatabaseError(Exception):
    """A failure talking to the scope's database; the message is safe to show (no password, no URL)."""


def connection_argument_spec():
    """Return the argument spec shared by every module of the collection (documented in one doc fragment)."""
    return dict(
        database_url=dict(type="str", no_log=True, fallback=(env_fallback, ["YUANTUS_DATABASE_URL"])),
        tenancy_mode=dict(
            type="str", choices=list(TENANCY_MODES), fallback=(env_fallback, ["YUANTUS_TENANCY_MODE"])
        ),
        database_url_template=dict(
            type="str", no_log=True, fallback=(env_fallback, ["YUANTUS_DATABASE_URL_TEMPLATE"])
        ),
        tenant_id=dict(type="str"),
        org_id=dict(type="str"),
        connect_timeout=dict(type="int", default=10),
        lock_timeout=dict(type="int", default=10),
        statement_timeout=dict(type="int", default=0),
        application_name=dict(type="str", default=APPLICATION_NAME),
    )


class ConnectionTarget(object):
    """Where to connect: the parts of a parsed database URL. ``describe()`` is the only text form."""

    def __init__(self, host, port, database, user, password, query):
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.query = query

    def describe(self):
        """Return ``user@host:port/database``: what every message may say about the target."""
        return "%s@%s:%s/%s" % (self.user or "(default user)", self.host or "(local socket)",
                                self.port or 5432, self.database)

    def public(self):
        """Return the target as a dict without the password (for results)."""
        return dict(host=self.host, port=self.port or 5432, database=self.database, user=self.user)


def _parse_with_sqlalchemy(url):
    try:
        parsed = make_url(url)
    except (SqlalchemyArgumentError, ValueError):
        raise DatabaseError("the database URL is malformed (expected postgresql[+psycopg]://user:pass@host:port/db)")
    return parsed.get_backend_name(), parsed.host, parsed.port, parsed.database, parsed.username, \
        parsed.password, dict(parsed.query)


# SQLAlchemy's own URL grammar (sqlalchemy.engine.url._parse_url), so that both parsers read every URL alike: a
# password may hold unescaped '#', '/', '?' and ':', the host keeps its case and is not unquoted, a repeated query
# key gives a tuple.
_URL_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.VERBOSE,
)


def _parse_without_sqlalchemy(url):
    match = _URL_PATTERN.match(url)
    try:
        if match is None:
            raise ValueError(url)
        parts = match.groupdict()
        port = int(parts["port"]) if parts["port"] is not None else None
    except ValueError:
        raise DatabaseError("the database URL is malformed (expected postgresql[+psycopg]://user:pass@host:port/db)")
    query = {}
    for key, value in parse_qsl(parts["query"] or ""):
        if key in query:
            query[key] = (query[key] if isinstance(query[key], tuple) else (query[key],)) + (value,)
        else:
            query[key] = value
    database, user, password = [unquote(parts[name]) if parts[name] is not None else None
                                for name in ("database", "username", "password")]
    return (parts["name"].split("+", 1)[0], parts["ipv4host"] or parts["ipv6host"], port, database, user,
            password, query)


def parse_database_url(url):
    """Parse a SQLAlchemy-style (``postgresql+psycopg://``) or plain ``postgresql://`` URL.

    Uses SQLAlchemy's URL parser when it is installed (the same one Yuantus uses), else an equivalent parser.
    Raises ``DatabaseError`` without quoting the URL when it is malformed or not a PostgreSQL URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise DatabaseError("the database URL is empty")
    parse = _parse_with_sqlalchemy if HAS_SQLALCHEMY else _parse_without_sqlalchemy
    backend, host, port, database, user, password, query = parse(url.strip())
    if backend not in POSTGRES_SCHEMES:
        raise DatabaseError("the database URL is not a PostgreSQL URL (its scheme names %r)" % backend)
    if not database:
        raise DatabaseError("the database URL names no database")
    return ConnectionTarget(host, port, database, user, password, query)


def redact(text, secrets):
    """Return ``text`` with every non-empty secret in ``secrets`` replaced by ``********``."""
    text = "%s" % (text,)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def resolve_target(params):
    """Resolve module parameters (the shared connection options) to ``(ConnectionTarget, scope dict)``."""
    mode = params.get("tenancy_mode") or "single"
    url = resolve_scope_url(
        mode,
        database_url=params.get("database_url"),
        database_url_template=params.get("database_url_template"),
        tenant_id=params.get("tenant_id"),
        org_id=params.get("org_id"),
    )
    target = parse_database_url(url)
    scope = dict(target.public(), tenancy_mode=mode)
    if mode != "single":
        scope["tenant_id"] = sanitize_id(params.get("tenant_id"))
        scope["org_id"] = sanitize_id(params.get("org_id"))
    return target, scope


def _session_options(params):
    settings = [
        ("lock_timeout", "%ds" % int(params.get("lock_timeout") or 0)),
        ("statement_timeout", "%ds" % int(params.get("statement_timeout") or 0)),
    ]
    return " ".join("-c %s=%s" % pair for pair in settings)


def libpq_environment(target, params):
    """Return the libpq environment variables of ``target`` (password included: for a child process only)."""
    env = dict(
        PGHOST=target.host,
        PGPORT=str(target.port or 5432),
        PGDATABASE=target.database,
        PGUSER=target.user,
        PGPASSWORD=target.password,
        PGAPPNAME=params.get("application_name") or APPLICATION_NAME,
        PGCONNECT_TIMEOUT=str(int(params.get("connect_timeout") or 10)),
        PGOPTIONS=_session_options(params),
        PGSSLMODE=target.query.get("sslmode"),
    )
    return dict((key, value) for key, value in env.items() if value)


def connect(target, params, autocommit=False):
    """Open a psycopg connection to ``target`` with the session settings of ``params``.

    Raises ``DatabaseError`` naming host, port, database and user (never the password) when it fails.
    """
    kwargs = dict(
        host=target.host,
        port=target.port,
        dbname=target.database,
        user=target.user,
        password=target.password,
        connect_timeout=int(params.get("connect_timeout") or 10),
        application_name=params.get("application_name") or APPLICATION_NAME,
        options=_session_options(params),
        autocommit=autocommit,
    )
    for key, value in target.query.items():
        if key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"):
            kwargs[key] = value
    kwargs = dict((key, value) for key, value in kwargs.items() if value is not None)
    try:
        return psycopg.connect(**kwargs)
    except psycopg.Error as exc:
        raise DatabaseError("cannot connect to %s: %s" % (target.describe(), error_text(exc, target)))


def error_text(exc, target=None):
    """Return the first line of a driver error, with the target's password removed."""
    message = ("%s" % (exc,)).strip().splitlines()
    first = message[0] if message else exc.__class__.__name__
    return redact(first, [target.password] if target is not None else [])


def require_driver(module):
    """Fail ``module`` the Ansible way when psycopg 3 is not importable."""
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (version 3)"), exception=PSYCOPG_IMPORT_ERROR)


def module_target(module):
    """Resolve the module's scope to ``(ConnectionTarget, scope dict)``, failing the module with a safe message.

    The password is registered with the module's ``no_log`` values: Ansible masks no_log option values (the
    URL), but not the password on its own inside a driver's or a program's message.
    """
    try:
        target, scope = resolve_target(module.params)
    except (TenancyError, DatabaseError) as exc:
        module.fail_json(msg=str(exc))
    if target.password:
        module.no_log_values.add(target.password)
    return target, scope


def module_connect(module, autocommit=False):
    """Resolve the module's scope and connect; on failure, fail the module with a safe message.

    Returns ``(connection, target, scope)``.
    """
    require_driver(module)
    target, scope = module_target(module)
    try:
        conn = connect(target, module.params, autocommit=autocommit)
    except DatabaseError as exc:
        module.fail_json(msg=str(exc), database=target.database, scope=scope)
    return conn, target, scope
