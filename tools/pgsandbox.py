"""A disposable PostgreSQL cluster for the tests, the demo and the benchmarks.

The cluster lives in one directory (``data/`` for PGDATA, ``sock/`` for the unix socket, ``postgres.log``,
``superuser.pw`` and ``cluster.json``). It listens on 127.0.0.1 only, on a free port, and every host connection
needs a password (scram-sha-256): a wrong password is refused, as on a real server. Durability is switched off
(fsync, synchronous_commit, full_page_writes) because the data is thrown away.

PostgreSQL refuses to run as root: when we are root, the directory is handed to the ``postgres`` OS user and the
server binaries run through ``runuser -u postgres --``.

Library use::

    with Cluster.start() as cluster:
        cluster.create_database("scope")
        with cluster.connect("scope") as conn:
            conn.execute("SELECT 1")

CLI (the cluster outlives the command; ``cluster.json`` records how to reach it, never the password itself)::

    python tools/pgsandbox.py start --dir DIR [--port N]
    python tools/pgsandbox.py status --dir DIR
    python tools/pgsandbox.py stop --dir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

HOST = "127.0.0.1"
SUPERUSER = "postgres"
OS_USER = "postgres"
CLUSTER_JSON = "cluster.json"
PASSWORD_FILE = "superuser.pw"
BIN_DIR_ENV = "PGSANDBOX_BIN_DIR"
_UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"
_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "logging_collector": "off",
}


class SandboxError(RuntimeError):
    """Raised when the sandbox cluster cannot be created, started or stopped."""


def find_bin_dir() -> Path:
    """Return the directory holding the PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``).

    Order: env ``PGSANDBOX_BIN_DIR``, ``pg_config --bindir``, the newest ``/usr/lib/postgresql/*/bin``, then the
    directory of ``initdb`` on PATH.
    """
    candidates: list[Path] = []
    if os.environ.get(BIN_DIR_ENV):
        candidates.append(Path(os.environ[BIN_DIR_ENV]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise SandboxError("no PostgreSQL server binaries found (initdb/pg_ctl); run tools/bootstrap.sh")


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin``: numeric version, newest last."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def free_port(host: str = HOST) -> int:
    """Return a TCP port that is free on ``host`` right now (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _is_root() -> bool:
    """True when running as root, i.e. the server must run as the ``postgres`` OS user."""
    return os.geteuid() == 0


def _as_server_user(cmd: list[str]) -> list[str]:
    """Wrap ``cmd`` so that it runs as the ``postgres`` OS user when we are root."""
    return ["runuser", "-u", OS_USER, "--", *cmd] if _is_root() else cmd


def _run(cmd: list[str], what: str) -> None:
    """Run a server command (as the server user); raise SandboxError with its output on failure."""
    proc = subprocess.run(
        _as_server_user(cmd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    if proc.returncode != 0:
        raise SandboxError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")


def _hand_over(path: Path) -> None:
    """Give ``path`` to the ``postgres`` OS user (no-op when not root)."""
    if _is_root():
        shutil.chown(path, user=OS_USER, group=None)


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 (never world- or group-readable, not even for an instant)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


@dataclass
class Cluster:
    """A running (or stopped) sandbox cluster rooted at ``base_dir``."""

    base_dir: Path
    port: int
    password: str = field(repr=False)
    bin_dir: Path = field(default_factory=find_bin_dir)
    host: str = HOST
    superuser: str = SUPERUSER

    # -- layout ---------------------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """PGDATA."""
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """Directory of the unix socket (inside the cluster directory)."""
        return self.base_dir / "sock"

    @property
    def log_file(self) -> Path:
        """Server log written by ``pg_ctl -l``."""
        return self.base_dir / "postgres.log"

    @property
    def password_file(self) -> Path:
        """File holding the superuser password (mode 0600)."""
        return self.base_dir / PASSWORD_FILE

    # -- lifecycle ------------------------------------------------------------------------------------------------
    @classmethod
    def start(cls, base_dir: Path | None = None, port: int | None = None) -> Cluster:
        """Create a new cluster (initdb) in ``base_dir`` (default: a new temp dir) and start it.

        ``base_dir`` must not exist or be empty. ``port`` defaults to a free port. On failure the directory is
        removed again.
        """
        base = _prepare_base_dir(base_dir)
        cluster = cls(base_dir=base, port=port or free_port(), password=secrets.token_urlsafe(24))
        try:
            cluster._initdb()
            cluster._start_with_retry(fixed_port=port is not None)
            cluster.write_cluster_json()
        except BaseException:
            cluster._remove_dir()
            raise
        return cluster

    @classmethod
    def load(cls, base_dir: Path) -> Cluster:
        """Attach to a cluster created earlier (reads ``cluster.json`` and the password file)."""
        base = Path(base_dir).resolve()
        info_path = base / CLUSTER_JSON
        if not info_path.is_file():
            raise SandboxError(f"{info_path} not found: no sandbox cluster in {base}")
        info = json.loads(info_path.read_text(encoding="utf-8"))
        password = Path(info["password_file"]).read_text(encoding="utf-8").strip()
        return cls(
            base_dir=base,
            port=int(info["port"]),
            password=password,
            bin_dir=Path(info["bin_dir"]),
            host=info["host"],
            superuser=info["user"],
        )

    def stop(self, remove: bool = True) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and, unless ``remove`` is false, delete the cluster dir."""
        if self.data_dir.is_dir() and self.is_running():
            self.shutdown("fast")
        if remove:
            self._remove_dir()

    def shutdown(self, mode: str = "fast") -> None:
        """Stop the server but keep the data (fault tests); ``mode`` is ``smart``, ``fast`` or ``immediate``."""
        _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop"],
             "pg_ctl stop")

    def start_server(self) -> None:
        """Start the server again on the existing data dir and port (after :meth:`shutdown`)."""
        _run(self._pg_ctl_start_cmd(), "pg_ctl start")

    def restart(self) -> None:
        """Restart the server (``pg_ctl restart -m fast``), keeping the data; open connections are cut."""
        cmd = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-m", "fast",
               "-w", "-t", "60", "restart"]
        _run(cmd, "pg_ctl restart")

    def is_running(self) -> bool:
        """True when ``pg_ctl status`` reports a running server."""
        proc = subprocess.run(
            _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"]),
            capture_output=True, text=True, check=False,
        )
        return proc.returncode == 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- connection strings ---------------------------------------------------------------------------------------
    def url(self, dbname: str, user: str | None = None, password: str | None = None,
            driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy-style URL (with the password: never print it). Defaults to the superuser."""
        user = user or self.superuser
        secret = self.password if password is None else password
        auth = quote(user, safe="") + (":" + quote(secret, safe="") if secret else "")
        return f"{driver}://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def dsn(self, dbname: str, user: str | None = None, password: str | None = None) -> str:
        """libpq conninfo string (with the password: never print it). Defaults to the superuser."""
        return make_conninfo(
            host=self.host, port=str(self.port), dbname=dbname, user=user or self.superuser,
            password=self.password if password is None else password,
        )

    def connect(self, dbname: str = "postgres", autocommit: bool = True, **kwargs: Any) -> psycopg.Connection:
        """Open a psycopg connection as the superuser (``user``/``password`` may be overridden in kwargs)."""
        params: dict[str, Any] = {"host": self.host, "port": self.port, "user": self.superuser,
                                  "password": self.password, "dbname": dbname, "connect_timeout": 10}
        params.update(kwargs)
        return psycopg.connect(autocommit=autocommit, **params)

    def psql_env(self, dbname: str = "postgres") -> dict[str, str]:
        """Environment for ``psql``/``pg_dump``/``pg_restore`` subprocesses (server-matching binaries first)."""
        env = dict(os.environ)
        env.update({
            "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.superuser,
            "PGPASSWORD": self.password, "PGDATABASE": dbname, "PGCONNECT_TIMEOUT": "10",
            "PATH": f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
        })
        return env

    # -- administration -------------------------------------------------------------------------------------------
    def create_database(self, name: str, owner: str | None = None, template: str = "template1") -> None:
        """CREATE DATABASE ``name`` (identifiers quoted)."""
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        if owner:
            query = query + sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        with self.connect() as conn:
            conn.execute(query)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ``name`` WITH (FORCE): open sessions are terminated."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def database_exists(self, name: str) -> bool:
        """True when a database called ``name`` exists."""
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def create_role(self, name: str, password: str | None, login: bool = True, superuser: bool = False) -> None:
        """CREATE ROLE ``name`` [LOGIN] [SUPERUSER] [PASSWORD ...] (scram-hashed by the server)."""
        parts = [sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)),
                 sql.SQL("LOGIN" if login else "NOLOGIN"), sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER")]
        if password is not None:
            parts.append(sql.SQL("PASSWORD {}").format(sql.Literal(password)))
        with self.connect() as conn:
            conn.execute(sql.SQL(" ").join(parts))

    def public_info(self) -> dict[str, Any]:
        """What ``cluster.json`` holds: how to reach the cluster, without the password itself."""
        return {
            "host": self.host, "port": self.port, "user": self.superuser,
            "password_file": str(self.password_file), "data_dir": str(self.data_dir),
            "base_dir": str(self.base_dir), "bin_dir": str(self.bin_dir),
        }

    def write_cluster_json(self) -> Path:
        """Write ``cluster.json`` (mode 0600) and return its path."""
        path = self.base_dir / CLUSTER_JSON
        _write_private(path, json.dumps(self.public_info(), indent=2) + "\n")
        return path

    # -- internals ------------------------------------------------------------------------------------------------
    def _initdb(self) -> None:
        """initdb with a scram-protected superuser; then append our settings to postgresql.conf."""
        _write_private(self.password_file, self.password + "\n")
        _hand_over(self.password_file)
        cmd = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), f"--username={self.superuser}",
               f"--pwfile={self.password_file}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
               "--no-sync", "--no-instructions"]
        _run(cmd, "initdb")

    def _write_settings(self) -> None:
        """Append the sandbox settings (port, socket dir, durability off) to postgresql.conf."""
        lines = dict(_SETTINGS, port=str(self.port), unix_socket_directories=f"'{self.socket_dir}'")
        lines["listen_addresses"] = f"'{self.host}'"
        text = "\n# pgsandbox\n" + "".join(f"{key} = {value}\n" for key, value in lines.items())
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as handle:
            handle.write(text)

    def _pg_ctl_start_cmd(self) -> list[str]:
        """``pg_ctl start -w`` for this cluster."""
        return [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
                "start"]

    def _start_with_retry(self, fixed_port: bool, attempts: int = 3) -> None:
        """Start the server; when the port was chosen by us and got taken meanwhile, try another one."""
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        _hand_over(self.socket_dir)
        for attempt in range(attempts):
            self._write_settings()
            try:
                _run(self._pg_ctl_start_cmd(), "pg_ctl start")
                return
            except SandboxError as err:
                if fixed_port or attempt == attempts - 1:
                    raise SandboxError(f"{err}; server log: {self._log_tail()}") from err
                self.port = free_port(self.host)

    def _log_tail(self, lines: int = 15) -> str:
        """The last lines of the server log (for error messages)."""
        try:
            return " | ".join(self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _remove_dir(self) -> None:
        """Delete the cluster directory (only if it looks like one of ours)."""
        if self.base_dir.is_dir() and (self.password_file.exists() or (self.data_dir / "PG_VERSION").exists()):
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _prepare_base_dir(base_dir: Path | None) -> Path:
    """Create (or accept an empty) cluster directory, owned by the server user and reachable by it."""
    if base_dir is None:
        base = Path(tempfile.mkdtemp(prefix="pgsandbox-"))
    else:
        base = Path(base_dir).resolve()
        if base.exists() and any(base.iterdir()):
            raise SandboxError(f"{base} is not empty; refusing to create a cluster there")
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    if len(str(base / "sock")) > _UNIX_SOCKET_MAX:
        shutil.rmtree(base, ignore_errors=True)
        raise SandboxError(f"cluster directory path too long for a unix socket: {base}")
    _hand_over(base)
    _check_reachable(base)
    return base


def _check_reachable(base: Path) -> None:
    """Fail early when the server user cannot write into ``base`` (e.g. a parent directory is mode 0700)."""
    if not _is_root():
        return
    probe = subprocess.run(_as_server_user(["test", "-w", str(base), "-a", "-x", str(base)]), check=False)
    if probe.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise SandboxError(f"user {OS_USER!r} cannot reach {base}: a parent directory is not traversable")


def start_cluster(base_dir: Path | None = None, port: int | None = None) -> Cluster:
    """Factory alias of :meth:`Cluster.start`."""
    return Cluster.start(base_dir=base_dir, port=port)


# -- CLI --------------------------------------------------------------------------------------------------------------
def _status(base_dir: Path) -> dict[str, Any]:
    """Public info plus ``running`` for the CLI (never the password)."""
    cluster = Cluster.load(base_dir)
    return dict(cluster.public_info(), running=cluster.is_running())


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``start``, ``stop`` or ``status`` a cluster in ``--dir``."""
    parser = argparse.ArgumentParser(description="Disposable PostgreSQL cluster (tests, demo, bench).")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop", "status"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--dir", required=True, type=Path, help="cluster directory")
        if name == "start":
            cmd.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            cluster = Cluster.start(base_dir=args.dir, port=args.port)
            print(json.dumps(dict(cluster.public_info(), running=True), indent=2))
        elif args.command == "stop":
            Cluster.load(args.dir).stop()
            print(json.dumps({"stopped": str(Path(args.dir).resolve())}))
        else:
            info = _status(args.dir)
            print(json.dumps(info, indent=2))
            return 0 if info["running"] else 3
    except SandboxError as err:
        print(f"pgsandbox: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
