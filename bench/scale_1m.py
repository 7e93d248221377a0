"""One scope with 1,000,000 legacy rows through ``playbooks/migrate.yml``: wall time per phase and peak memory.

One run of this script:

1. starts a disposable PostgreSQL cluster (``tools/pgsandbox.py``; stopped and removed at the end) and seeds one
   scope database with ``--rows`` legacy relationships (``tools/yuantus_fixture.seed_legacy``, minimal schema);
2. runs ``ansible-playbook playbooks/migrate.yml`` on it (one host, local connection, backups and reports in a
   temporary directory) with ansible-core's own ``junit`` callback enabled: ansible-core 2.19 ships no
   ``profile_tasks`` (that lives in ansible.posix), but ``junit`` records every task's duration per host, and each
   task's file names its role, i.e. the phase (report, preflight, backup, migrate, verify, smoke);
3. polls ``/proc`` every 50 ms while the playbook runs: the peak RSS (``VmHWM``) of the controller
   (``ansible-playbook``), of the largest worker/module process, and the peak of the summed RSS of the whole tree;
4. prints: wall time, the time per phase (sum of its tasks), the slowest tasks, the module's own copy figures
   (``duration_s``, ``rows_per_second``) from the scope's report, and the memory figures.

Examples::

    .venv/bin/python bench/scale_1m.py                  # 1,000,000 rows
    .venv/bin/python bench/scale_1m.py --rows 200000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import proctree
from pgsandbox import Cluster
from yuantus_fixture import create_scope_database, seed_legacy

PHASES = ("report", "preflight", "backup", "migrate", "verify", "smoke")


# -- processes ------------------------------------------------------------------------------------------------
class MemoryPoll(threading.Thread):
    """Peak RSS of an ansible process tree (controller, workers, modules; not the PostgreSQL server)."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.controller_peak_kb = 0
        self.process_peak: dict[int, tuple[int, str]] = {}
        self.tree_sum_peak_kb = 0
        self.processes_seen = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            for pid in [self.root, *proctree.descendants(self.root)]:
                status = proctree.status(pid)
                if not status:
                    continue
                total += proctree.kb(status.get("VmRSS"))
                hwm = proctree.kb(status.get("VmHWM"))
                if pid == self.root:
                    self.controller_peak_kb = max(self.controller_peak_kb, hwm)
                elif hwm > self.process_peak.get(pid, (0, ""))[0]:
                    self.process_peak[pid] = (hwm, proctree.cmdline(pid)[:100] or "?")
            self.tree_sum_peak_kb = max(self.tree_sum_peak_kb, total)
            self.processes_seen = max(self.processes_seen, len(self.process_peak))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def largest_child(self) -> tuple[int, str]:
        return max(self.process_peak.values(), default=(0, ""))


# -- playbook runs --------------------------------------------------------------------------------------------
def ansible_env(workdir: Path, junit_dir: Path) -> dict[str, str]:
    venv_bin = REPO / ".venv" / "bin"
    env = {key: value for key, value in os.environ.items() if not key.startswith("YUANTUS_")}
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "playbooks" / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local"), "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_CALLBACKS_ENABLED": "junit", "JUNIT_OUTPUT_DIR": str(junit_dir),
        "JUNIT_INCLUDE_SETUP_TASKS_IN_REPORT": "True", "JUNIT_HIDE_TASK_ARGUMENTS": "True",
        "JUNIT_TASK_RELATIVE_PATH": str(REPO),
    })
    return env


def write_inventory(path: Path, hosts: dict[str, dict[str, Any]], **common: Any) -> Path:
    common.setdefault("ansible_connection", "local")
    common.setdefault("ansible_python_interpreter", str(REPO / ".venv" / "bin" / "python"))
    path.write_text(json.dumps({"all": {"vars": common, "hosts": hosts}}, indent=1), encoding="utf-8")
    path.chmod(0o600)
    return path


def run_playbook(playbook: str, inventory: Path, workdir: Path, *extra: str) -> dict[str, Any]:
    """Run a playbook; return wall time, rc, the junit task records and the memory figures."""
    junit_dir = Path(tempfile.mkdtemp(prefix="junit-", dir=workdir))
    env = ansible_env(workdir, junit_dir)
    started = time.monotonic()
    proc = subprocess.Popen(["ansible-playbook", str(REPO / "playbooks" / playbook), "-i", str(inventory), *extra],
                            cwd=str(REPO / "playbooks"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    poll = MemoryPoll(proc.pid)
    poll.start()
    output = proc.communicate()[0]
    wall = time.monotonic() - started
    poll.stop()
    return {"rc": proc.returncode, "wall_s": wall, "output": output, "tasks": read_junit(junit_dir), "memory": poll}


_NAME = re.compile(r"^\[(?P<host>[^\]]+)\] (?P<play>.*?): (?P<task>.*)$")


def read_junit(junit_dir: Path) -> list[dict[str, Any]]:
    """One record per (task, host): host, task, role (from the task's file), seconds, skipped."""
    records = []
    for path in junit_dir.glob("*.xml"):
        for case in ET.parse(path).getroot().iter("testcase"):
            match = _NAME.match(case.get("name", ""))
            classname = case.get("classname", "")
            role = re.search(r"roles/([^/]+)/", classname)
            records.append({
                "host": match.group("host") if match else "?", "task": match.group("task") if match else case.get("name"),
                "file": classname, "role": role.group(1) if role else "playbook", "seconds": float(case.get("time", 0)),
                "skipped": case.find("skipped") is not None})
    return records


def phase_times(tasks: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for task in tasks:
        out[task["role"]] += task["seconds"]
    return dict(out)


def slowest(tasks: list[dict[str, Any]], count: int = 12) -> list[tuple[str, str, float, int]]:
    """Tasks by total time over all hosts: (role, task, total s, executions)."""
    total: dict[tuple[str, str], list[float]] = defaultdict(list)
    for task in tasks:
        total[(task["role"], task["task"])].append(task["seconds"])
    ranked = sorted(((role, name, sum(times), len(times)) for (role, name), times in total.items()),
                    key=lambda item: -item[2])
    return ranked[:count]


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None, help="migrate_batch_size (default: the role's)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    cluster = Cluster.start()
    try:
        started = time.monotonic()
        scope = create_scope_database(cluster, "scale_1m", "minimal")
        with scope.connect() as conn:
            summary = seed_legacy(conn, args.rows, seed=args.seed)
        with scope.connect() as conn:
            db_size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        print(f"seeded {args.rows:,} legacy rows in {time.monotonic() - started:.1f}s "
              f"(database {db_size / 2**20:.0f} MB)", flush=True)
        inventory = write_inventory(workdir / "inventory.json", {"scope": {"yuantus_database_url": scope.url}},
                                    relmigrate_backup_dir=str(workdir / "backups"),
                                    relmigrate_report_dir=str(workdir / "reports"))
        extra = ["-e", "relmigrate_run_id=scale"]
        if args.batch_size:
            extra += ["-e", f"migrate_batch_size={args.batch_size}"]
        result = run_playbook("migrate.yml", inventory, workdir, *extra)
        if result["rc"] != 0:
            print(result["output"][-5000:])
            print(f"migrate.yml failed (rc {result['rc']})")
            return 1
        report = json.loads((workdir / "reports" / "scale" / "scope.json").read_text())
        phases = phase_times(result["tasks"])
        memory = result["memory"]
        child_kb, child_cmd = memory.largest_child()
        figures = {
            "rows": args.rows, "database_mb": round(db_size / 2**20), "wall_s": round(result["wall_s"], 1),
            "phases_s": {phase: round(phases.get(phase, 0.0), 2) for phase in (*PHASES, "playbook")},
            "tasks": len(result["tasks"]), "migrated": report["migrated"], "copy_duration_s": report["copy_duration_s"],
            "rows_per_second": round(report["migrated"] / report["copy_duration_s"]) if report["copy_duration_s"] else None,
            "backup_bytes": (report.get("backup") or {}).get("size_bytes"),
            "controller_peak_rss_mb": round(memory.controller_peak_kb / 1024),
            "largest_child_peak_rss_mb": round(child_kb / 1024), "largest_child": child_cmd,
            "tree_peak_rss_sum_mb": round(memory.tree_sum_peak_kb / 1024), "verify": report["verify"],
            "seed_summary_counts": summary["counts"],
        }
        print()
        print(f"migrate.yml, one scope, {args.rows:,} legacy rows ({figures['database_mb']} MB database)")
        print(f"  wall time                 {figures['wall_s']:>8.1f} s   ({figures['tasks']} task results)")
        for phase in (*PHASES, "playbook"):
            print(f"  {phase:<25} {figures['phases_s'][phase]:>8.1f} s")
        print(f"  copy (module's own)       {report['copy_duration_s']:>8.1f} s   "
              f"{figures['rows_per_second']:,} rows/s, {report['migrated']:,} rows")
        print(f"  backup archive            {(figures['backup_bytes'] or 0) / 2**20:>8.1f} MB")
        print(f"  verification              {report['verify']}")
        print(f"  peak RSS controller       {mb(memory.controller_peak_kb):>10}")
        print(f"  peak RSS largest child    {mb(child_kb):>10}   ({child_cmd.strip().split(' ')[-1][-60:]})")
        print(f"  peak RSS sum of the tree  {mb(memory.tree_sum_peak_kb):>10}")
        print("  slowest tasks:")
        for role, name, seconds, runs in slowest(result["tasks"], 8):
            print(f"    {seconds:>8.2f} s  {role:<10} {name}  (x{runs})")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    sys.exit(main())
