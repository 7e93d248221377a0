"""A stand-in for the Yuantus HTTP API (tests/smoke only; a TEST FIXTURE, never shipped as product).

It serves the few endpoints the smoke role calls (/work/shared/yuantus/API.md) from a real scope database, with
the semantics that matter to the smoke checks: the BOM tree lists relationship ITEMS (``meta_items`` rows of a
relationship ItemType whose ``source_id`` is the item), so a legacy ``meta_relationships`` row appears there only
once it has been migrated; the legacy-usage report counts legacy rows and relationship items per legacy type.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg.rows import dict_row

API = "/api/v1"

USAGE_SQL = """
SELECT t.id, t.name, coalesce(nullif(t.name, ''), t.id) AS item_type_id,
       (SELECT count(*) FROM meta_relationships r WHERE r.relationship_type_id = t.id) AS relationship_count,
       (SELECT count(*) FROM meta_items i
         WHERE i.item_type_id = coalesce(nullif(t.name, ''), t.id)) AS relationship_item_count
FROM meta_relationship_types t ORDER BY t.id
"""

CHILDREN_SQL = """
SELECT i.id, i.item_type_id, i.state, i.source_id, i.related_id, i.properties, i.generation, i.is_current,
       c.id AS child_id, c.item_type_id AS child_type, c.state AS child_state, c.properties AS child_properties
FROM meta_items i
JOIN meta_item_types it ON it.id = i.item_type_id AND it.is_relationship
LEFT JOIN meta_items c ON c.id = i.related_id
WHERE i.source_id = %s
ORDER BY (i.properties ->> 'sort_order')::numeric NULLS LAST, i.id
"""


@dataclass
class StandIn:
    """The service's state: scopes (``(tenant, org) -> libpq DSN``), the one user, issued tokens, a request log."""

    scopes: dict[tuple[str, str], str]
    username: str
    password: str
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, tenant: str, org: str) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (tenant, org)
        return token


def _usage_entry(dsn: str, tenant: str, org: str) -> dict[str, Any]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        missing = conn.execute("SELECT to_regclass('public.meta_relationships') IS NULL AS m").fetchone()["m"]
        types = [] if missing else conn.execute(USAGE_SQL).fetchall()
        rows = 0 if missing else conn.execute("SELECT count(*) AS n FROM meta_relationships").fetchone()["n"]
        rel_types = conn.execute("SELECT count(*) AS n FROM meta_item_types WHERE is_relationship").fetchone()["n"]
        rel_items = conn.execute("SELECT count(*) AS n FROM meta_items i JOIN meta_item_types t "
                                 "ON t.id = i.item_type_id AND t.is_relationship").fetchone()["n"]
    return {
        "tenant_id": tenant, "org_id": org, "relationship_type_count": len(types), "relationship_row_count": rows,
        "relationship_item_type_count": rel_types, "relationship_item_count": rel_items,
        "meta_relationships_missing": missing,
        "types": [{"id": t["id"], "name": t["name"], "item_type_id": t["item_type_id"],
                   "relationship_count": t["relationship_count"],
                   "relationship_item_count": t["relationship_item_count"]} for t in types],
        "warnings": ["legacy_relationships_readonly"],
    }


def _bom_tree(dsn: str, item_id: str) -> dict[str, Any] | None:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        item = conn.execute("SELECT id, item_type_id, state, properties FROM meta_items WHERE id = %s",
                            (item_id,)).fetchone()
        if item is None:
            return None
        children = [{
            "relationship": {"id": r["id"], "item_type_id": r["item_type_id"], "state": r["state"],
                             "source_id": r["source_id"], "related_id": r["related_id"],
                             "properties": r["properties"] or {}, "generation": r["generation"],
                             "is_current": r["is_current"]},
            "child": {"id": r["child_id"], "item_type_id": r["child_type"], "state": r["child_state"],
                      "properties": r["child_properties"] or {}, "children": []},
        } for r in conn.execute(CHILDREN_SQL, (item_id,)).fetchall()]
    return {**item, "properties": item["properties"] or {}, "children": children}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is ``StandIn.requests``."""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _scope(self) -> tuple[str, str, str] | None:
        """The caller's (tenant, org, dsn) when the bearer token and the tenancy headers agree; else answer."""
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        issued = self.server.standin.tokens.get(token)
        if issued is None:
            self._send(HTTPStatus.UNAUTHORIZED, {"detail": "Not authenticated"})
            return None
        tenant, org = self.headers.get("x-tenant-id", ""), self.headers.get("x-org-id", "")
        if (tenant, org) != issued or issued not in self.server.standin.scopes:
            self._send(HTTPStatus.FORBIDDEN, {"detail": "Tenant/org headers do not match the token"})
            return None
        return tenant, org, self.server.standin.scopes[issued]

    def do_GET(self) -> None:
        standin = self.server.standin
        url = urlsplit(self.path)
        standin.requests.append(("GET", url.path))
        if url.path == f"{API}/health":
            self._send(HTTPStatus.OK, {"ok": True, "service": "yuantus-standin"})
            return
        if url.path == f"{API}/admin/relationship-types/legacy-usage":
            if self._scope() is None:
                return
            details = parse_qs(url.query).get("include_details", ["false"])[0] == "true"
            items = [_usage_entry(dsn, tenant, org) for (tenant, org), dsn in sorted(standin.scopes.items())]
            if not details:
                items = [{k: v for k, v in entry.items() if k != "types"} for entry in items]
            self._send(HTTPStatus.OK, {"items": items})
            return
        parts = url.path[len(API):].split("/") if url.path.startswith(API + "/bom/") else []
        if len(parts) == 4 and parts[3] == "tree":
            scope = self._scope()
            if scope is None:
                return
            tree = _bom_tree(scope[2], unquote(parts[2]))
            if tree is None:
                self._send(HTTPStatus.NOT_FOUND, {"detail": "Item not found"})
            else:
                self._send(HTTPStatus.OK, tree)
            return
        self._send(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})

    def do_POST(self) -> None:
        standin = self.server.standin
        url = urlsplit(self.path)
        standin.requests.append(("POST", url.path))
        if url.path != f"{API}/auth/login":
            self._send(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except json.JSONDecodeError:
            self._send(HTTPStatus.UNPROCESSABLE_ENTITY, {"detail": "Invalid JSON"})
            return
        scope = (str(body.get("tenant_id", "")), str(body.get("org_id", "")))
        if (body.get("username") != standin.username or body.get("password") != standin.password
                or scope not in standin.scopes):
            self._send(HTTPStatus.UNAUTHORIZED, {"detail": "Invalid credentials"})
            return
        self._send(HTTPStatus.OK, {"access_token": standin.issue(*scope), "token_type": "bearer"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, standin: StandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin


class Service:
    """A running stand-in on a free port of 127.0.0.1: ``with Service(...) as svc: svc.base_url``."""

    def __init__(self, scopes: dict[tuple[str, str], str], username: str, password: str) -> None:
        self.standin = StandIn(scopes=dict(scopes), username=username, password=password)
        self._server = _Server(self.standin)
        self._thread = threading.Thread(target=self._server.serve_forever, name="yuantus-standin", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
