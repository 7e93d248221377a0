"""Secrets and safety: every playbook at -vvv with a distinctive password; the password must appear nowhere:
not in the output, the reports, the manifests, the progress log, ansible's log, the backup file names, nor in any
process's command line (nor pg_dump's environment) while the playbooks run. Backup files 0600, directories 0700.
No role builds a shell string from its inputs."""

from __future__ import annotations

import re
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from faultlib import REPO, ProcWatch, run_playbook, write_inventory

# Distinctive, and with characters that need URL quoting: the quoted form must not leak either.
SECRET = "Zq9-Secr3t:Marmot/Kx#77"
SECRET_USER = "relmig_secret_user"


def _quoted(secret: str) -> str:
    from urllib.parse import quote

    return quote(secret, safe="")


@pytest.fixture
def secret_scope(pg_cluster: Any) -> Any:
    from yuantus_fixture import create_scope_database, seed_legacy

    with pg_cluster.connect() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {SECRET_USER}")
    pg_cluster.create_role(SECRET_USER, SECRET, superuser=True)
    name = f"sec_{uuid.uuid4().hex[:8]}"
    with create_scope_database(pg_cluster, name, "minimal").connect() as conn:
        seed_legacy(conn, 5000, seed=5)
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)
        with pg_cluster.connect() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {SECRET_USER}")


def test_no_playbook_leaks_the_password(pg_cluster: Any, secret_scope: str, faults_env: dict[str, str],
                                        tmp_path: Path) -> None:
    backups, reports, progress, log = tmp_path / "backups", tmp_path / "reports", tmp_path / "progress.log", \
        tmp_path / "ansible.log"
    url = pg_cluster.url(secret_scope, user=SECRET_USER, password=SECRET)
    inventory = write_inventory(tmp_path / "inv.json", {"scope": {"yuantus_database_url": url}},
                                relmigrate_backup_dir=str(backups), relmigrate_report_dir=str(reports),
                                migrate_progress_log=str(progress))
    secrets = [SECRET, _quoted(SECRET)]
    steps = [
        ("dry_run.yml", "sec-dry"),
        ("backup.yml", "sec-backup"),
        ("migrate.yml", "sec-migrate"),
        ("verify.yml", "sec-verify"),
        ("rollback.yml", "sec-rollback-delete"),
        ("rollback.yml", "sec-rollback-restore"),
    ]
    outputs = []
    with ProcWatch(secrets, watch_for="pg_") as watch:
        for playbook, run_id in steps:
            extra = ["-vvv", "-e", f"relmigrate_run_id={run_id}"]
            if run_id == "sec-rollback-delete":
                extra += ["-e", "relmigrate_rollback_method=delete"]
            if run_id == "sec-rollback-restore":
                extra += ["-e", "relmigrate_rollback_method=restore", "-e", "relmigrate_rollback_run_id=sec-migrate",
                          "-e", "relmigrate_restore_confirm=scope"]
            if playbook == "backup.yml":
                extra += ["-e", "backup_force=true"]
            run = run_playbook(faults_env, playbook, inventory, *extra, json_output=False,
                               ANSIBLE_LOG_PATH=str(log), ANSIBLE_CALLBACK_RESULT_FORMAT="json")
            assert run.rc == 0, (playbook, [line for line in run.text.splitlines() if "fatal" in line or "\"msg\"" in line][-10:])
            outputs.append((playbook, run.text))
    assert watch.seen, "no pg_dump/pg_restore/psql process was observed"
    assert watch.hits == [], watch.hits
    # PGPASSWORD in a client program's own environment (set by libpq_command inside the module) is readable by
    # the same user and root only; report what was seen, but it is not a leak to other users.
    print("environment sightings:", sorted({hit.split(":")[0].split(" ", 2)[2] for hit in watch.env_hits}))

    leaks = []
    for playbook, text in outputs:
        leaks += [f"{playbook} output" for secret in secrets if secret in text]
    files = [path for root in (backups, reports) for path in root.rglob("*")] + [progress, log]
    for path in files:
        if any(secret in str(path) for secret in secrets):
            leaks.append(f"file name {path}")
        if path.is_file() and not path.name.endswith((".dump",)):
            body = path.read_text(encoding="utf-8", errors="replace")
            leaks += [f"{path}" for secret in secrets if secret in body]
    assert leaks == [], leaks
    assert progress.is_file() and log.is_file() and (reports / "sec-migrate" / "summary.md").is_file()

    # permissions of what the backups left
    backup_files = [path for path in backups.rglob("*") if path.is_file()]
    assert any(path.name == "scope.dump" for path in backup_files)
    for path in backups.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    for path in reports.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))


TEMPLATED = re.compile(r"\{\{")


def test_no_role_builds_a_shell_string_from_inputs() -> None:
    """argv lists only: no ansible.builtin.shell, no `cmd:` strings, no templated `sh -c` script."""
    problems = []
    for path in sorted((REPO / "roles").rglob("*.yml")) + sorted((REPO / "playbooks").glob("*.yml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if re.match(r"^-?\s*(ansible\.builtin\.)?(shell|raw|script):", stripped):
                problems.append(f"{path.relative_to(REPO)}:{number}: {stripped}")
            if re.match(r"^(cmd|_raw_params):", stripped) and TEMPLATED.search(stripped):
                problems.append(f"{path.relative_to(REPO)}:{number}: {stripped}")
        text = "\n".join(lines)
        # an inline `sh -c` script must take its inputs as positional parameters, never templated into it
        for match in re.finditer(r"-\s*sh\s*\n\s*-\s*-c\s*\n\s*-\s*(.+)", text):
            if TEMPLATED.search(match.group(1)):
                problems.append(f"{path.relative_to(REPO)}: templated sh -c script {match.group(1)}")
        for match in re.finditer(r"'sh',\s*'-c',\s*'([^']*)'", text):
            if TEMPLATED.search(match.group(1)):
                problems.append(f"{path.relative_to(REPO)}: templated sh -c script {match.group(1)}")
    assert problems == [], problems


def test_sql_identifiers_are_quoted() -> None:
    """Every SQL statement our plugins compose with an identifier uses psycopg.sql.Identifier, never %-formatting
    of a name into SQL text."""
    offenders = []
    for path in sorted((REPO / "plugins").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"execute\(\s*f?\"[^\"]*(\{[a-z_]+\}|%s)[^\"]*\"\s*%", text):
            offenders.append(f"{path.relative_to(REPO)}: {match.group(0)[:80]}")
        for match in re.finditer(r"execute\(\s*f\"", text):
            offenders.append(f"{path.relative_to(REPO)}: f-string SQL {match.group(0)}")
    assert offenders == [], offenders
