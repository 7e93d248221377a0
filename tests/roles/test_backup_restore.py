"""The backup and restore roles against a real PostgreSQL (tests/conftest.py) with real ansible-playbook runs.

The helper playbooks in ``playbooks/`` define ``relmigrate_scope`` as ``playbooks/vars/scope.yml`` does and call
the roles; the scope's URL travels in ``YUANTUS_DATABASE_URL`` (never on a command line).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from yuantus_fixture import ScopeDatabase, seed_legacy, table_checksums

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "playbooks"
ROLES = HERE.parent.parent / "roles"
HOST = "scope1"


class Harness:
    """Runs the helper playbooks for one scope database."""

    def __init__(self, scope: ScopeDatabase, env: dict[str, str], tmp_path: Path) -> None:
        self.scope = scope
        self.backup_dir = tmp_path / "backups"
        self.inventory = tmp_path / "inventory.ini"
        self.inventory.write_text(f"[scopes]\n{HOST} ansible_connection=local\n")
        self.env = dict(env, YUANTUS_DATABASE_URL=scope.url)

    def play(self, name: str, *args: str, **extra: Any) -> subprocess.CompletedProcess[str]:
        extra.setdefault("relmigrate_backup_dir", str(self.backup_dir))
        argv = ["ansible-playbook", "-i", str(self.inventory), str(PLAYBOOKS / name), *args,
                "-e", json.dumps(extra)]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=600, check=False)

    def backup(self, run_id: str, *args: str, **extra: Any) -> subprocess.CompletedProcess[str]:
        return self.play("backup.yml", *args, relmigrate_run_id=run_id, **extra)

    def migrate(self, run_id: str) -> None:
        ok(self.play("migrate.yml", relmigrate_run_id=run_id))

    def restore(self, *args: str, **extra: Any) -> subprocess.CompletedProcess[str]:
        extra.setdefault("relmigrate_restore_confirm", HOST)
        return self.play("restore.yml", *args, **extra)

    def checksums(self, schema: str = "public") -> dict[str, str]:
        with self.scope.connect() as conn:
            sums = table_checksums(conn)
        return {name: value for name, value in sums.items() if ("." in name) == (schema != "public")}

    def manifest(self, run_id: str) -> dict[str, Any]:
        return json.loads((self.backup_dir / run_id / f"{HOST}.manifest.json").read_text())


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc


def failed(proc: subprocess.CompletedProcess[str], message: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert message in " ".join(out.split()), out[-6000:]
    return out


def recap(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(rf"^{HOST}\s*:\s*(.*)$", proc.stdout, re.MULTILINE)
    assert match, proc.stdout[-3000:]
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def archive_sha256(path: Path, fmt: str) -> tuple[str, int]:
    """What the roles compute: the file's sha256, or for a directory the sha256 of its sha256sum-style listing."""
    if fmt != "directory":
        return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
    files = sorted(p for p in path.iterdir() if p.is_file())
    listing = "\n".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in files) + "\n"
    return hashlib.sha256(listing.encode()).hexdigest(), sum(p.stat().st_size for p in files)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def harness(scope_db: ScopeDatabase, collection_env: dict[str, str], tmp_path: Path) -> Harness:
    with scope_db.connect() as conn:
        seed_legacy(conn, 400, seed=5)
    return Harness(scope_db, collection_env, tmp_path)


# -- backup ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["custom", "directory", "plain"])
def test_backup_modes_and_manifest(harness: Harness, fmt: str) -> None:
    ok(harness.backup("run-a", backup_format=fmt))
    run_dir = harness.backup_dir / "run-a"
    archive = run_dir / f"{HOST}.{ {'custom': 'dump', 'directory': 'dir', 'plain': 'sql'}[fmt] }"
    assert mode(harness.backup_dir) == 0o700 and mode(run_dir) == 0o700
    files = [archive] if fmt != "directory" else list(archive.iterdir())
    assert files and all(mode(p) == 0o600 for p in files + [run_dir / f"{HOST}.manifest.json"])
    if fmt == "directory":
        assert mode(archive) == 0o700
    manifest = harness.manifest("run-a")
    assert (manifest["sha256"], manifest["size_bytes"]) == archive_sha256(archive, fmt)
    assert manifest["format"] == fmt and manifest["database"] == harness.scope.name
    assert manifest["file"] == str(archive) and manifest["run_id"] == "run-a"
    assert manifest["row_counts"] == {"meta_relationships": 400, "meta_items": 120}
    assert (manifest["toc_entries"] or 0) > 0 if fmt != "plain" else manifest["toc_entries"] is None
    assert manifest["server_version_num"] >= 100000 and "pg_dump" in manifest["pg_dump_version"]
    assert "password" not in json.dumps(manifest["scope"]) and harness.scope.cluster.password not in json.dumps(manifest)


def test_backup_again_in_the_same_run_reuses_it(harness: Harness) -> None:
    ok(harness.backup("run-a"))
    first = harness.manifest("run-a")
    again = ok(harness.backup("run-a"))
    assert recap(again)["changed"] == 0 and harness.manifest("run-a") == first
    assert "already taken in run run-a" in again.stdout


def test_nothing_pending_takes_no_backup(harness: Harness) -> None:
    harness.migrate("mig-1")
    proc = ok(harness.backup("run-b"))
    assert recap(proc)["changed"] == 0
    assert not (harness.backup_dir / "run-b").exists()
    assert "nothing pending: no backup needed" in proc.stdout
    forced = ok(harness.backup("run-c", backup_force=True))
    assert recap(forced)["changed"] > 0 and (harness.backup_dir / "run-c" / f"{HOST}.dump").is_file()


def test_preflight_fact_decides(harness: Harness) -> None:
    proc = ok(harness.backup("run-p", relmigrate_preflight={"skipped": False, "counts": {"pending": 0}}))
    assert recap(proc)["changed"] == 0 and not (harness.backup_dir / "run-p").exists()


def test_check_mode_writes_nothing(harness: Harness) -> None:
    proc = ok(harness.backup("run-k", "--check"))
    assert "would dump database" in proc.stdout
    assert not harness.backup_dir.exists()


def test_skip_reason_takes_no_backup(harness: Harness) -> None:
    proc = ok(harness.backup("run-s", relmigrate_skip_backup_reason="DBA snapshot 42"))
    assert recap(proc)["changed"] == 0 and "skipped by the operator: DBA snapshot 42" in proc.stdout
    assert not (harness.backup_dir / "run-s").exists()


def _fake_bin(tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    real = shutil.which("pg_dump")
    script = bin_dir / "pg_dump"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && exec {real} --version\n{body}\n")
    script.chmod(0o755)
    (bin_dir / "pg_restore").symlink_to(shutil.which("pg_restore"))
    return bin_dir


def test_failed_dump_removes_partial_file(harness: Harness, tmp_path: Path) -> None:
    body = ('for a; do case "$a" in --file=*) f="${a#--file=}";; esac; done\n'
            'head -c 4096 /dev/zero > "$f"\n'
            'echo "pg_dump: error: could not write to output file: No space left on device" >&2\nexit 1')
    bin_dir = _fake_bin(tmp_path, body)
    proc = harness.backup("run-f", backup_pg_bin_dir=str(bin_dir))
    failed(proc, "No space left on device")
    assert "partial archive was removed" in " ".join(proc.stdout.split())
    run_dir = harness.backup_dir / "run-f"
    assert list(run_dir.iterdir()) == []
    assert "Show the backup fact" not in proc.stdout  # the scope failed: nothing after the role ran


def test_free_space_and_version_checks(harness: Harness, tmp_path: Path) -> None:
    failed(harness.backup("run-m", backup_free_space_margin=1e12), "backup_free_space_margin")
    bin_dir = tmp_path / "oldbin"
    bin_dir.mkdir()
    (bin_dir / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    (bin_dir / "pg_dump").chmod(0o755)
    failed(harness.backup("run-v", backup_pg_bin_dir=str(bin_dir)), "pg_dump cannot dump a newer server")
    assert not (harness.backup_dir / "run-m").exists() and not (harness.backup_dir / "run-v").exists()


# -- restore ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["custom", "directory", "plain"])
def test_restore_after_migration(harness: Harness, fmt: str) -> None:
    before = harness.checksums()
    ok(harness.backup("run-r", backup_format=fmt))
    harness.migrate("mig-r")
    with harness.scope.connect() as conn:
        conn.execute("CREATE TABLE public.after_backup (id int)")
        conn.execute("CREATE VIEW public.after_view AS SELECT 1 AS one")
    assert harness.checksums() != before
    proc = ok(harness.restore())
    assert harness.checksums() == before
    with harness.scope.connect() as conn:
        assert conn.execute("SELECT to_regclass('public.after_backup'), to_regclass('public.after_view')"
                            ).fetchone() == (None, None)
        runs = conn.execute("SELECT run_id, status, rolled_back_by, migrated FROM relmigrate.runs").fetchall()
        assert conn.execute("SELECT count(*) FROM relmigrate.run_batches").fetchone()[0] == 0
    assert [(r[0], r[1], r[2]) for r in runs] == [("mig-r", "rolled_back", "restore")] and runs[0][3] > 0
    assert "runs_rolled_back" in proc.stdout
    # The ledger keeps the history across a second restore too (the run is re-recorded, not duplicated).
    ok(harness.restore())
    with harness.scope.connect() as conn:
        assert conn.execute("SELECT run_id, status FROM relmigrate.runs").fetchall() == [("mig-r", "rolled_back")]


def test_restore_latest_or_named_run(harness: Harness) -> None:
    ok(harness.backup("run-1"))
    with harness.scope.connect() as conn:
        conn.execute("DELETE FROM meta_relationships WHERE id > 'r0000300'")
    ok(harness.backup("run-2"))
    ok(harness.restore(restore_run_id="run-1"))
    with harness.scope.connect() as conn:
        assert conn.execute("SELECT count(*) FROM meta_relationships").fetchone()[0] == 400
    ok(harness.restore())  # latest: run-2
    with harness.scope.connect() as conn:
        assert conn.execute("SELECT count(*) FROM meta_relationships").fetchone()[0] == 300


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_backup_is_refused_before_touching_the_db(harness: Harness, damage: str) -> None:
    ok(harness.backup("run-d"))
    harness.migrate("mig-d")
    before = harness.checksums() | harness.checksums("relmigrate")
    archive = harness.backup_dir / "run-d" / f"{HOST}.dump"
    data = bytearray(archive.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 100]
    archive.write_bytes(bytes(data))
    proc = harness.restore()
    failed(proc, "The database was not touched")
    assert "Read the privileges" not in proc.stdout
    assert harness.checksums() | harness.checksums("relmigrate") == before


def test_restore_requires_confirmation(harness: Harness) -> None:
    ok(harness.backup("run-c"))
    before = harness.checksums()
    failed(harness.restore(relmigrate_restore_confirm=""), "confirm with -e relmigrate_restore_confirm=scope1")
    failed(harness.restore(relmigrate_restore_confirm="other-scope"), "without confirmation")
    assert harness.checksums() == before


def test_restore_unknown_run_id(harness: Harness) -> None:
    ok(harness.backup("run-x"))
    failed(harness.restore(restore_run_id="no-such-run"),
           "no backup of scope1 for run no-such-run under")
    failed(harness.restore(restore_run_id="../run-x"), "restore_run_id letters")


def test_restore_refuses_connected_sessions_unless_told(harness: Harness) -> None:
    ok(harness.backup("run-s"))
    with harness.scope.connect() as conn:
        conn.execute("SET application_name = 'yuantus-app'")
        failed(harness.restore(), "session(s) are connected")
        ok(harness.restore(restore_terminate_sessions=True))


def test_restore_check_mode_touches_nothing(harness: Harness) -> None:
    ok(harness.backup("run-k"))
    harness.migrate("mig-k")
    before = harness.checksums() | harness.checksums("relmigrate")
    proc = ok(harness.restore("--check"))
    assert "would drop database" in proc.stdout and "mig-k" in proc.stdout
    assert harness.checksums() | harness.checksums("relmigrate") == before


def test_password_never_shown(harness: Harness, tmp_path: Path) -> None:
    password = harness.scope.cluster.password
    seen, environ = tmp_path / "ps.txt", tmp_path / "environ.txt"
    # A pg_dump that records every process's command line (and its own environment) while it runs.
    bin_dir = _fake_bin(tmp_path, f'ps -eo args > {seen}\ntr "\\0" "\\n" < /proc/$$/environ > {environ}\n'
                                  f'exec {shutil.which("pg_dump")} "$@"')
    outputs = [ok(harness.backup("run-pw", "-vvv", backup_pg_bin_dir=str(bin_dir)))]
    harness.migrate("mig-pw")
    outputs.append(ok(harness.restore("-vvv")))
    text = "".join(p.stdout + p.stderr for p in outputs)
    assert "pg_dump" in seen.read_text() and password not in seen.read_text()
    # libpq_command hands the password to pg_dump in pg_dump's own environment (readable only by its user), never
    # in a file; (YUANTUS_DATABASE_URL is the controller's own environment, inherited by the local connection.)
    assert f"PGPASSWORD={password}" in environ.read_text().splitlines()
    assert "PGPASSFILE" not in environ.read_text()
    assert password not in text
    assert all(password not in p.read_text() for p in harness.backup_dir.rglob("*.json"))


# -- role conventions ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["backup", "restore"])
def test_argument_specs_mirror_defaults(role: str) -> None:
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"]
    with_default = {name: spec["default"] for name, spec in options.items() if "default" in spec}
    assert with_default == defaults
    rest = set(options) - set(defaults)
    assert all(name.startswith("relmigrate_") and "default" not in options[name] for name in rest)
