"""The smoke role, run with ansible-playbook against a real scope database and a stand-in Yuantus service."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from yuantus_fixture import ScopeDatabase, seed_legacy
from yuantus_standin import Service

HERE = Path(__file__).resolve().parent
ROLE = HERE.parent.parent / "roles" / "smoke"
TENANT, ORG, USER = "tenant-1", "org-1", "smoke-admin"


@dataclass
class Run:
    """One ansible-playbook run: exit code, combined output, the relmigrate_smoke fact it left."""

    rc: int
    output: str
    fact: dict[str, Any]

    def check(self, name: str) -> dict[str, Any]:
        return next(c for c in self.fact["checks"] if c["name"] == name)


@dataclass
class Env:
    scope: ScopeDatabase
    service: Service
    password: str
    env: dict[str, str]
    tmp: Path

    def play(self, *args: str, migrate: bool = False, verbose: str = "-vv", **extra: Any) -> Run:
        """Run tests/smoke/playbook.yml on one local scope host; ``extra`` become extra vars."""
        result_file = self.tmp / f"smoke-{secrets.token_hex(4)}.json"
        inventory = self.tmp / "hosts.ini"
        inventory.write_text(f"scope ansible_connection=local ansible_python_interpreter={self.env['ANSIBLE_PYTHON_INTERPRETER']}\n")
        extra_vars = {
            "relmigrate_scope": {"tenancy_mode": "single", "database_url": self.scope.url, "database_url_template": "",
                                 "tenant_id": TENANT, "org_id": ORG},
            "smoke_base_url": self.service.base_url, "test_migrate": migrate,
            "test_result_file": str(result_file), **extra,
        }
        vars_file = self.tmp / "extra.json"
        vars_file.write_text(json.dumps(extra_vars))
        vars_file.chmod(0o600)
        proc = subprocess.run(
            ["ansible-playbook", "-i", str(inventory), "-e", f"@{vars_file}", verbose, *args, str(HERE / "playbook.yml")],
            env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )
        fact = json.loads(result_file.read_text()) if result_file.exists() else {}
        return Run(proc.returncode, proc.stdout + proc.stderr, fact)


@pytest.fixture
def smoke(scope_db: ScopeDatabase, collection_env: dict[str, str], tmp_path: Path) -> Iterator[Env]:
    """A seeded scope (60 legacy rows, 4 types), a stand-in service for it, and the environment with credentials."""
    with scope_db.connect() as conn:
        seed_legacy(conn, 60, seed=11, types=4)
    password = "pw-" + secrets.token_urlsafe(12)
    env = {k: v for k, v in collection_env.items() if not k.startswith("YUANTUS_")}
    env.update(YUANTUS_SMOKE_USERNAME=USER, YUANTUS_SMOKE_PASSWORD=password)
    with Service({(TENANT, ORG): scope_db.dsn}, USER, password) as service:
        yield Env(scope_db, service, password, env, tmp_path)


def _no_secrets(run: Run, env: Env) -> None:
    assert env.password not in run.output
    assert env.scope.cluster.password not in run.output
    for token in env.service.standin.tokens:
        assert token not in run.output


def _fake_scripts(tmp: Path, scripts: dict[str, str]) -> Path:
    directory = tmp / "scripts"
    directory.mkdir()
    for name, body in scripts.items():
        (directory / name).write_text("#!/usr/bin/env bash\n" + body)
    return directory


def test_argument_spec_mirrors_defaults() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    public = [name for name in spec if not name.startswith("relmigrate_")]
    assert public == list(defaults)
    for name, option in spec.items():
        if "default" in option:
            assert option["default"] == defaults[name], name


def test_skipped_without_url(smoke: Env) -> None:
    run = smoke.play(smoke_base_url="")
    assert run.rc == 0, run.output
    assert "Smoke checks skipped for scope: no Yuantus service URL configured" in run.output
    assert run.fact == {"ran": False, "passed": None,
                        "reason": "no Yuantus service URL configured (smoke_base_url / YUANTUS_SMOKE_BASE_URL)"}
    assert smoke.service.standin.requests == []


def test_passes_after_migration(smoke: Env) -> None:
    run = smoke.play(migrate=True, verbose="-vvv")
    assert run.rc == 0, run.output
    fact = run.fact
    assert fact["ran"] is True and fact["passed"] is True and fact["check_mode"] is False
    assert fact["reason"] == "all checks passed" and fact["failed_checks"] == []
    assert [c["name"] for c in fact["checks"]] == ["health", "login", "legacy_usage", "bom_sample"]
    assert all(c["passed"] is True and c["enforced"] is True for c in fact["checks"])
    assert "4 legacy types" in run.check("legacy_usage")["detail"]
    assert "5 sampled rows, each listed" in run.check("bom_sample")["detail"]
    trees = [path for method, path in smoke.service.standin.requests if path.endswith("/tree")]
    assert len(trees) == 5
    _no_secrets(run, smoke)


def test_fails_before_migration(smoke: Env) -> None:
    run = smoke.play()
    assert run.rc != 0
    assert run.fact["ran"] is True and run.fact["passed"] is False
    assert run.fact["failed_checks"] == ["legacy_usage", "bom_sample"]
    assert "Smoke checks failed for scope (tenant tenant-1, org org-1" in run.output
    assert "legacy_usage: GET legacy-usage (tenant-1/org-1): 4 legacy types;" in run.output
    assert "0 relationship items <" in run.check("legacy_usage")["detail"]
    assert "5 sampled rows, 5 missing: r0000001 not under" in run.check("bom_sample")["detail"]
    _no_secrets(run, smoke)


def test_orphans_skipped_by_the_migration_are_tolerated(smoke: Env) -> None:
    with smoke.scope.connect() as conn:
        seed_legacy(conn, 20, seed=3, orphans={"missing_source": 2}, id_prefix="o")
    run = smoke.play(migrate=True, test_allow_orphans=True)
    assert run.rc == 0, run.output
    assert "shortfall 2, tolerated 2 skipped orphans" in run.check("legacy_usage")["detail"]


def test_wrong_password_fails_without_showing_it(smoke: Env) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    smoke.env["YUANTUS_SMOKE_PASSWORD"] = wrong
    run = smoke.play(verbose="-vvvv")
    assert run.rc != 0
    assert run.fact["passed"] is False and run.fact["failed_checks"] == ["login"]
    assert "login: POST /api/v1/auth/login as smoke-admin: HTTP 401: Invalid credentials" in run.output
    assert wrong not in run.output
    assert [c["name"] for c in run.fact["checks"]] == ["health", "login"]
    _no_secrets(run, smoke)


def test_service_down_fails_on_health(smoke: Env) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = smoke.play(smoke_base_url=f"http://127.0.0.1:{port}/")
    assert run.rc != 0
    assert run.fact["failed_checks"] == ["health"]
    assert "health: GET /api/v1/health: no answer" in run.output


def test_missing_credentials_fail_first(smoke: Env) -> None:
    del smoke.env["YUANTUS_SMOKE_PASSWORD"]
    run = smoke.play()
    assert run.rc != 0
    assert "smoke_username / smoke_password are empty" in run.output
    assert smoke.service.standin.requests == []


def test_verify_scripts_failures_show_their_output(smoke: Env) -> None:
    scripts = _fake_scripts(smoke.tmp, {
        "verify_bom_tree.sh": 'echo "create part A: ok"\necho "add BOM line A->B: HTTP 409 latest released guard"\n'
                              'echo "bom tree check failed" >&2\nexit 1\n',
        "verify_where_used.sh": 'echo "args=$1 $2 $3 CLI=$CLI PY=$PY EXTRA=$EXTRA" > "$(dirname "$0")/args.txt"\n'
                                'echo "ALL CHECKS PASSED"\n',
        "verify_quiet.sh": 'echo "done"\n',
    })
    run = smoke.play(migrate=True, smoke_scripts_dir=str(scripts),
                     smoke_scripts=["verify_bom_tree.sh", "verify_where_used.sh", "verify_quiet.sh"],
                     smoke_scripts_cli="/opt/yuantus/bin/yuantus", smoke_scripts_python="/usr/bin/python3",
                     smoke_scripts_environment={"EXTRA": "x"})
    assert run.rc != 0
    assert run.fact["failed_checks"] == ["verify_bom_tree.sh", "verify_quiet.sh"]
    assert run.check("verify_where_used.sh")["passed"] is True
    assert "add BOM line A->B: HTTP 409 latest released guard" in run.output
    assert "bom tree check failed" in run.output
    assert "verify_bom_tree.sh: exit 1; last lines:" in run.output
    assert "verify_quiet.sh: exit 0; last lines: done" in run.output
    assert (scripts / "args.txt").read_text().strip() == (
        f"args={smoke.service.base_url} {TENANT} {ORG} CLI=/opt/yuantus/bin/yuantus PY=/usr/bin/python3 EXTRA=x")


def test_check_mode_reads_but_does_not_enforce_data_checks(smoke: Env) -> None:
    scripts = _fake_scripts(smoke.tmp, {
        name: 'touch "$(dirname "$0")/ran"\necho "ALL CHECKS PASSED"\n'
        for name in ("verify_bom_tree.sh", "verify_where_used.sh")})
    run = smoke.play("--check", migrate=True, smoke_scripts_dir=str(scripts))
    assert run.rc == 0, run.output
    fact = run.fact
    assert fact["passed"] is True and fact["check_mode"] is True
    assert fact["reason"] == "all checks passed (check mode: the data checks are not enforced)"
    assert run.check("health")["passed"] is True and run.check("login")["passed"] is True
    usage, sample = run.check("legacy_usage"), run.check("bom_sample")
    assert usage["passed"] is False and usage["enforced"] is False
    assert sample["passed"] is False and sample["enforced"] is False
    assert run.check("verify_bom_tree.sh") == {"name": "verify_bom_tree.sh", "passed": None, "enforced": False,
                                               "detail": "not run in check mode (the script creates test parts)"}
    assert not (scripts / "ran").exists()
    with smoke.scope.connect() as conn:
        assert conn.execute("SELECT count(*) FROM meta_items WHERE id LIKE 'r%'").fetchone()[0] == 0
    _no_secrets(run, smoke)
