"""A fleet of scope databases through ``playbooks/migrate.yml`` at several fork counts: total wall time, per-scope
overhead, and which tasks the time goes to.

One run of this script:

1. starts a disposable PostgreSQL cluster (``tools/pgsandbox.py``; removed at the end), seeds ONE template
   database with ``--rows`` legacy rows (minimal schema) and, before each measurement, (re)creates ``--scopes``
   scope databases from it (``CREATE DATABASE ... TEMPLATE``: identical, and fast);
2. for every ``--forks`` value runs ``ansible-playbook playbooks/migrate.yml -f N`` over an inventory of one host
   per scope database (local connection; backups and reports in a temporary directory), with ansible-core's
   ``junit`` callback recording every task's duration per host (see ``bench/scale_1m.py``);
3. prints per fork count: wall time, wall time per scope, the copy's own share (the module's ``duration_s`` summed
   over the scopes), the number of task results per scope (run and skipped), and the tasks that took the most
   time summed over all scopes, with their role.

The target is < 5 s per scope at forks 10 on a 2-core machine.

Examples::

    .venv/bin/python bench/fleet.py                         # 50 scopes x 1,000 rows, forks 1 and 10
    .venv/bin/python bench/fleet.py --scopes 20 --forks 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgsandbox import Cluster
from scale_1m import PHASES, phase_times, run_playbook, slowest, write_inventory
from yuantus_fixture import create_scope_database, seed_legacy


def make_fleet(cluster: Cluster, template: str, scopes: int) -> list[str]:
    names = [f"fleet_{number:03d}" for number in range(scopes)]
    for name in names:
        cluster.drop_database(name)
        cluster.create_database(name, template=template)
    return names


def measure(cluster: Cluster, template: str, scopes: int, forks: int, workdir: Path) -> dict[str, Any]:
    names = make_fleet(cluster, template, scopes)
    run_dir = workdir / f"forks-{forks}"
    run_dir.mkdir()
    inventory = write_inventory(run_dir / "inventory.json",
                                {name.replace("_", "-"): {"yuantus_database_url": cluster.url(name)} for name in names},
                                relmigrate_backup_dir=str(run_dir / "backups"),
                                relmigrate_report_dir=str(run_dir / "reports"))
    result = run_playbook("migrate.yml", inventory, run_dir, "-f", str(forks), "-e", f"relmigrate_run_id=f{forks}")
    reports = [json.loads(path.read_text()) for path in (run_dir / "reports" / f"f{forks}").glob("*.json")]
    failed = [report["scope"] for report in reports if report.get("status") != "migrated"]
    copy_s = sum(float(report.get("copy_duration_s") or 0) for report in reports)
    tasks = result["tasks"]
    per_host: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        per_host[task["host"]].append(task)
    host_counts = [len(records) for host, records in per_host.items() if host != "include"]
    ran_counts = [sum(1 for record in records if not record["skipped"]) for host, records in per_host.items()
                  if host != "include"]
    memory = result["memory"]
    # junit times a (task, host) from the task's start: with forks > 1 a host's time includes waiting for a fork,
    # so the sum over hosts over-counts; the slowest host of a task is the wall time the fleet spent in it.
    task_wall: dict[tuple[str, str], float] = defaultdict(float)
    for task in tasks:
        key = (task["role"], task["task"])
        task_wall[key] = max(task_wall[key], task["seconds"])
    role_wall: dict[str, float] = defaultdict(float)
    for (role, _name), seconds in task_wall.items():
        role_wall[role] += seconds
    return {
        "forks": forks, "scopes": scopes, "rc": result["rc"], "wall_s": round(result["wall_s"], 1),
        "per_scope_s": round(result["wall_s"] / scopes, 2), "copy_total_s": round(copy_s, 1),
        "migrated_scopes": len(reports) - len(failed), "failed_scopes": failed,
        "task_results_per_scope": max(host_counts, default=0), "tasks_run_per_scope": max(ran_counts, default=0),
        "phases_s": {phase: round(seconds, 1) for phase, seconds in sorted(phase_times(tasks).items())},
        "slowest": [{"role": role, "task": name, "total_s": round(total, 1), "runs": runs}
                    for role, name, total, runs in slowest(tasks, 15)],
        "wall_by_phase_s": {role: round(seconds, 1) for role, seconds in sorted(role_wall.items())},
        "slowest_wall": [{"role": role, "task": name, "wall_s": round(seconds, 1)} for (role, name), seconds in
                         sorted(task_wall.items(), key=lambda item: -item[1])[:12]],
        "controller_peak_rss_mb": round(memory.controller_peak_kb / 1024),
        "tree_peak_rss_sum_mb": round(memory.tree_sum_peak_kb / 1024),
        "output_tail": result["output"][-3000:] if result["rc"] else "",
    }


def print_result(figures: dict[str, Any], target: float) -> None:
    verdict = "meets" if figures["per_scope_s"] < target else "MISSES"
    print(f"\nforks {figures['forks']}: {figures['scopes']} scopes, wall {figures['wall_s']} s, "
          f"{figures['per_scope_s']} s per scope ({verdict} the {target:g} s target); rc {figures['rc']}; "
          f"{figures['migrated_scopes']} migrated, failed: {figures['failed_scopes'] or 'none'}")
    print(f"  copy itself (module duration_s, summed): {figures['copy_total_s']} s; "
          f"task results per scope: {figures['task_results_per_scope']} "
          f"({figures['tasks_run_per_scope']} run, the rest skipped)")
    print(f"  peak RSS: controller {figures['controller_peak_rss_mb']} MB, "
          f"sum of the tree {figures['tree_peak_rss_sum_mb']} MB")
    print("  task time per phase, summed over scopes: " + ", ".join(
        f"{phase} {seconds}s" for phase, seconds in figures["phases_s"].items()))
    print("  wall time per phase (each task's slowest host, summed): " + ", ".join(
        f"{phase} {seconds}s" for phase, seconds in figures["wall_by_phase_s"].items()))
    print("  tasks by wall time (slowest host):")
    for task in figures["slowest_wall"]:
        print(f"    {task['wall_s']:>7.1f} s  {task['role']:<10} {task['task']}")
    print("  tasks by summed time (junit counts each host from the task's start, so this over-counts):")
    for task in figures["slowest"]:
        print(f"    {task['total_s']:>7.1f} s  {task['role']:<10} {task['task']}  (x{task['runs']})")
    if figures["output_tail"]:
        print(figures["output_tail"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scopes", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1000, help="legacy rows per scope")
    parser.add_argument("--forks", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--target", type=float, default=5.0, help="seconds per scope to meet (default 5)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    cluster = Cluster.start()
    results = []
    try:
        scope = create_scope_database(cluster, "fleet_template", "minimal")
        with scope.connect() as conn:
            seed_legacy(conn, args.rows)
        print(f"fleet: {args.scopes} scopes x {args.rows:,} legacy rows; phases: {', '.join(PHASES)}", flush=True)
        for forks in args.forks:
            started = time.monotonic()
            figures = measure(cluster, "fleet_template", args.scopes, forks, workdir)
            figures["including_fleet_setup_s"] = round(time.monotonic() - started, 1)
            print_result(figures, args.target)
            results.append(figures)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0 if all(result["rc"] == 0 for result in results) else 1
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    sys.exit(main())
