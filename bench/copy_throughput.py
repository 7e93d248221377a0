"""Copy throughput of ``yuantus.relmigrate.relationship_items`` against one set-based ``INSERT ... SELECT``.

One run of this script:

1. starts a disposable PostgreSQL cluster (``tools/pgsandbox.py``), stopped and removed at the end;
2. builds a *seed template* database from the real Yuantus schema (``load_schema(kind='full')``, or the minimal
   schema when the dump is not available: the script says which) and seeds ``--rows`` legacy relationships with
   ``tools/yuantus_fixture.seed_legacy`` (several types, realistic properties), then ``VACUUM ANALYZE``;
3. for every measurement clones that template (``CREATE DATABASE ... TEMPLATE``), so every database measured holds
   byte-identical legacy data and statistics:

   * **module**: ``ansible localhost -m yuantus.relmigrate.relationship_items -a batch_size=N`` in a subprocess,
     exactly as Ansible runs it (the module runs in a child python of the ansible worker). Its own ``duration_s``
     and ``rows_per_second`` are taken from the JSON result. A thread polls ``/proc`` every 50 ms and records the
     peak RSS (``VmHWM``) of every process of the tree: reported for the module process and for the whole tree;
   * **single statement**: the same mapping as ONE ``INSERT ... SELECT`` built from ``migration.ITEM_COLUMNS``,
     ``ITEM_VALUES_SQL``, ``MIGRATABLE_JOIN_SQL`` and ``PENDING_SQL``; the ItemTypes are created beforehand with
     the module's own ``migration.start_run`` (untimed); ``time.perf_counter()`` around execute + commit;

4. checks that both databases hold the same mapped content: an md5 over every ``meta_items`` row's
   ``ITEM_COLUMNS`` (``created_at`` excluded) and over the ItemTypes (``uuid`` excluded);
5. prints a table: rows, module s, module rows/s, single-statement s, rows/s, ratio, peak RSS, content match.

Machines are noisy: each measurement is repeated ``--repeat`` times (default 2) in the same process, with the
order of module / single statement alternated between repetitions; the best (shortest) time of each is reported,
and every sample is printed as well.

Examples::

    .venv/bin/python bench/copy_throughput.py                       # 100,000 rows, batch 5000
    .venv/bin/python bench/copy_throughput.py --rows 10000 100000 1000000
    .venv/bin/python bench/copy_throughput.py --rows 100000 --sweep  # batch sizes 1000..50000
    .venv/bin/python bench/copy_throughput.py --rows 100000 --batch-size 20000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".collections"
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(COLLECTIONS))

import proctree
from ansible_collections.yuantus.relmigrate.plugins.module_utils import migration
from pgsandbox import Cluster, start_cluster
from psycopg import sql
from yuantus_fixture import full_schema_available, load_schema, seed_legacy

MODULE = "yuantus.relmigrate.relationship_items"
SWEEP_BATCH_SIZES = (1000, 5000, 20000, 50000)
POLL_SECONDS = 0.05
TEMPLATE_DB = "bench_seed"

SINGLE_STATEMENT_SQL = """
INSERT INTO public.meta_items ({columns})
SELECT {values}
FROM public.meta_relationships r
{migratable}
  AND {pending}
ORDER BY r.id
""".format(columns=", ".join(migration.ITEM_COLUMNS), values=migration.ITEM_VALUES_SQL,
           migratable=migration.MIGRATABLE_JOIN_SQL, pending=migration.PENDING_SQL)

ITEMS_CHECKSUM_SQL = """
SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY id), ''))
FROM (SELECT id, md5(ROW({columns})::text) AS h FROM public.meta_items) AS s
""".format(columns=", ".join(migration.ITEM_COLUMNS))

TYPES_CHECKSUM_SQL = """
SELECT md5(coalesce(string_agg(md5(ROW(id, label, description, is_relationship, is_versionable,
                                       version_control_enabled, revision_scheme, source_item_type_id,
                                       related_item_type_id)::text), '' ORDER BY id), ''))
FROM public.meta_item_types
"""


# -- peak RSS of a process tree ------------------------------------------------------------------------------------
class TreeMemoryMonitor(threading.Thread):
    """Poll ``/proc`` every 50 ms; remember each descendant's peak ``VmHWM`` (peak RSS) and command line."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.seen: dict[int, dict[str, Any]] = {}
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(POLL_SECONDS)

    def sample(self) -> None:
        for pid in [self.root_pid, *proctree.descendants(self.root_pid)]:
            status = proctree.status(pid)
            if not status:
                continue
            hwm = max(proctree.kb(status.get("VmHWM")), proctree.kb(status.get("VmRSS")))
            record = self.seen.setdefault(pid, {"hwm_kb": 0, "cmdline": "", "name": status.get("Name", "")})
            record["hwm_kb"] = max(record["hwm_kb"], hwm)
            if not record["cmdline"]:
                record["cmdline"] = proctree.cmdline(pid)
        self.samples += 1

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def module_process(self) -> dict[str, Any] | None:
        """The process that ran the module: AnsiballZ in its command line, else the python that is not ansible."""
        root_cmd = self.seen.get(self.root_pid, {}).get("cmdline", "")
        candidates = [dict(rec, pid=pid) for pid, rec in self.seen.items()
                      if "AnsiballZ" in rec["cmdline"] or "relationship_items" in rec["cmdline"]]
        candidates = [rec for rec in candidates if rec["name"].startswith("python")] or candidates
        if not candidates:
            candidates = [dict(rec, pid=pid) for pid, rec in self.seen.items()
                          if rec["name"].startswith("python") and rec["cmdline"] != root_cmd]
        return max(candidates, key=lambda rec: rec["hwm_kb"]) if candidates else None

    def tree_peak_kb(self) -> int:
        """The largest peak RSS of any single process of the tree."""
        return max((rec["hwm_kb"] for rec in self.seen.values()), default=0)

    def tree_sum_peak_kb(self) -> int:
        """Sum of the per-process peaks (an upper bound of the tree's simultaneous RSS)."""
        return sum(rec["hwm_kb"] for rec in self.seen.values())


# -- databases -------------------------------------------------------------------------------------------------------
def build_template(cluster: Cluster, rows: int, seed: int, kind: str) -> dict[str, Any]:
    """Create the seeded template database (schema + legacy rows, vacuumed and analysed)."""
    cluster.drop_database(TEMPLATE_DB)
    cluster.create_database(TEMPLATE_DB)
    started = time.perf_counter()
    with cluster.connect(TEMPLATE_DB) as conn:
        load_schema(conn, kind)
        summary = seed_legacy(conn, rows, seed=seed)
        conn.execute("VACUUM ANALYZE")
    summary["build_s"] = round(time.perf_counter() - started, 2)
    return summary


def clone(cluster: Cluster, name: str) -> None:
    """A fresh database identical to the template (data, statistics)."""
    cluster.drop_database(name)
    with cluster.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(name), sql.Identifier(TEMPLATE_DB)))


def content_checksum(cluster: Cluster, name: str) -> dict[str, Any]:
    """md5 of the mapped content: meta_items over ITEM_COLUMNS (no created_at) and the ItemTypes (no uuid)."""
    with cluster.connect(name) as conn:
        count, items = conn.execute(ITEMS_CHECKSUM_SQL).fetchone()
        types = conn.execute(TYPES_CHECKSUM_SQL).fetchone()[0]
        migrated = conn.execute(
            "SELECT count(*) FROM public.meta_items WHERE id IN (SELECT id FROM public.meta_relationships)"
        ).fetchone()[0]
    return {"meta_items": count, "migrated_ids": migrated, "items_md5": items, "types_md5": types}


# -- the two measurements ------------------------------------------------------------------------------------------
def run_module(cluster: Cluster, dbname: str, batch_size: int, workdir: Path) -> dict[str, Any]:
    """Run the module through ``ansible`` (ad hoc, local connection); return its result plus peak RSS figures."""
    env = dict(os.environ)
    venv_bin = REPO / ".venv" / "bin"
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_PYTHON_INTERPRETER": str(venv_bin / "python"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local"),
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote"),
        "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        # the URL (with the sandbox password) goes through the environment, never argv
        "YUANTUS_DATABASE_URL": cluster.url(dbname),
        "YUANTUS_TENANCY_MODE": "single",
    })
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    cmd = [str(venv_bin / "ansible"), "localhost", "-m", MODULE,
           "-a", f"batch_size={batch_size} run_id={run_id}"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(workdir))
    monitor = TreeMemoryMonitor(proc.pid)
    monitor.start()
    stdout, stderr = proc.communicate()
    monitor.stop()
    wall = time.perf_counter() - started
    result = _parse_adhoc(stdout)
    if proc.returncode != 0 or result is None or result.get("failed"):
        raise RuntimeError(f"module run failed (exit {proc.returncode}): {stdout[-3000:]} {stderr[-3000:]}")
    module_proc = monitor.module_process()
    return {
        "duration_s": float(result["duration_s"]),
        "rows_per_second": float(result["rows_per_second"]),
        "migrated": int(result["migrated"]),
        "batches": int(result["batches"]),
        "pending_after": result.get("pending_after"),
        "wall_s": round(wall, 3),
        "module_rss_mb": round(module_proc["hwm_kb"] / 1024, 1) if module_proc else None,
        "module_cmdline": module_proc["cmdline"][:120] if module_proc else None,
        "tree_max_rss_mb": round(monitor.tree_peak_kb() / 1024, 1),
        "tree_sum_rss_mb": round(monitor.tree_sum_peak_kb() / 1024, 1),
        "tree_processes": len(monitor.seen),
        "rss_samples": monitor.samples,
    }


def _parse_adhoc(stdout: str) -> dict[str, Any] | None:
    """``localhost | CHANGED => {json}`` (the ad hoc ``minimal`` callback) -> the result dict."""
    marker = stdout.find(" => ")
    if marker < 0:
        return None
    try:
        return json.loads(stdout[marker + 4:])
    except ValueError:
        return None


def run_single_statement(cluster: Cluster, dbname: str) -> dict[str, Any]:
    """ItemTypes (untimed, the module's own step 2), then ONE timed INSERT ... SELECT of the same mapping."""
    with cluster.connect(dbname, autocommit=False) as conn:
        with conn.cursor() as cur:
            report = migration.analyse(cur, update_item_types=True, allow_orphans=False)
            if report["gate_failures"]:
                raise RuntimeError("gate failures in {}: {}".format(dbname, report["gate_failures"]))
            migration.ensure_ledger(cur)
            migration.start_run(cur, "bench-single", {}, report["counts"], report["plan"])
        conn.commit()
        with conn.cursor() as cur:
            started = time.perf_counter()
            cur.execute(SINGLE_STATEMENT_SQL)
            rows = cur.rowcount
            conn.commit()
            duration = time.perf_counter() - started
    return {"duration_s": round(duration, 3), "rows": rows, "rows_per_second": round(rows / duration, 1)}


# -- driver ----------------------------------------------------------------------------------------------------------
def measure(cluster: Cluster, rows: int, batch_sizes: list[int], repeat: int, workdir: Path,
            verbose: bool) -> list[dict[str, Any]]:
    """All measurements for one seeded template: ``repeat`` x (single statement + one module run per batch size)."""
    singles: list[dict[str, Any]] = []
    modules: dict[int, list[dict[str, Any]]] = {size: [] for size in batch_sizes}
    checks: dict[str, dict[str, Any]] = {}
    for rep in range(repeat):
        steps: list[tuple[str, int | None]] = [("module", size) for size in batch_sizes]
        steps = ([("single", None)] + steps) if rep % 2 else (steps + [("single", None)])
        for what, size in steps:
            name = "bench_single" if what == "single" else f"bench_module_{size}"
            clone(cluster, name)
            if what == "single":
                sample = run_single_statement(cluster, name)
                singles.append(sample)
            else:
                sample = run_module(cluster, name, size, workdir)
                modules[size].append(sample)
            checks[name] = content_checksum(cluster, name)
            cluster.drop_database(name)
            if verbose:
                batch = "" if size is None else f" batch={size}"
                print(f"  rows={rows} rep={rep + 1} {what}{batch}: {json.dumps(sample)}", flush=True)
    best_single = min(singles, key=lambda s: s["duration_s"])
    reference = checks["bench_single"]
    out = []
    for size in batch_sizes:
        best = min(modules[size], key=lambda s: s["duration_s"])
        check = checks[f"bench_module_{size}"]
        out.append({
            "rows": rows, "batch_size": size, "migrated": best["migrated"], "batches": best["batches"],
            "module_s": best["duration_s"], "module_rows_s": best["rows_per_second"],
            "module_wall_s": best["wall_s"],
            "single_s": best_single["duration_s"], "single_rows_s": best_single["rows_per_second"],
            "ratio": round(best["rows_per_second"] / best_single["rows_per_second"], 3),
            "module_rss_mb": max(s["module_rss_mb"] or 0 for s in modules[size]),
            "tree_max_rss_mb": max(s["tree_max_rss_mb"] for s in modules[size]),
            "tree_sum_rss_mb": max(s["tree_sum_rss_mb"] for s in modules[size]),
            "content_match": check == reference and best["migrated"] == best_single["rows"],
            "module_samples_s": [s["duration_s"] for s in modules[size]],
            "single_samples_s": [s["duration_s"] for s in singles],
            "module_process": best["module_cmdline"],
            "checksum": check, "single_checksum": reference,
        })
    return out


def print_table(results: list[dict[str, Any]]) -> None:
    head = ("rows", "batch", "module s", "module rows/s", "single s", "single rows/s", "ratio",
            "module RSS MB", "tree max RSS MB", "content match")
    lines = [head]
    for r in results:
        lines.append((f"{r['rows']:,}", f"{r['batch_size']:,}", f"{r['module_s']:.3f}", f"{r['module_rows_s']:,.0f}",
                      f"{r['single_s']:.3f}", f"{r['single_rows_s']:,.0f}", f"{r['ratio']:.2f}",
                      f"{r['module_rss_mb']:.1f}", f"{r['tree_max_rss_mb']:.1f}",
                      "yes" if r["content_match"] else "NO"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for number, line in enumerate(lines):
        print("  ".join(cell.rjust(widths[i]) for i, cell in enumerate(line)))
        if number == 0:
            print("  ".join("-" * w for w in widths))
    for r in results:
        print(f"  samples rows={r['rows']:,} batch={r['batch_size']:,}: module {r['module_samples_s']} s, "
              f"single {r['single_samples_s']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100000],
                        help="legacy rows to seed; several values run one after the other (default 100000)")
    parser.add_argument("--batch-size", type=int, default=5000, help="module batch_size (default 5000)")
    parser.add_argument("--sweep", action="store_true",
                        help=f"module runs at batch sizes {SWEEP_BATCH_SIZES} instead of --batch-size")
    parser.add_argument("--sweep-sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="comma-separated batch sizes for --sweep")
    parser.add_argument("--repeat", type=int, default=2, help="repetitions per measurement, best kept (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated legacy data")
    parser.add_argument("--schema", choices=("auto", "full", "minimal"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--quiet", action="store_true", help="no per-sample lines")
    args = parser.parse_args(argv)

    kind = args.schema
    if kind == "auto":
        kind = "full" if full_schema_available() else "minimal"
    if kind == "full" and not full_schema_available():
        parser.error("the full Yuantus schema dump is not available")
    sizes = (args.sweep_sizes or list(SWEEP_BATCH_SIZES)) if args.sweep else [args.batch_size]
    described = ("real Yuantus dump tenant.sql + tenant_seed_meta.sql" if kind == "full"
                 else "minimal Yuantus-compatible schema of tools/schema")
    print(f"schema: {kind} ({described})")
    print(f"batch sizes: {', '.join(map(str, sizes))}; repeat: {args.repeat} (best kept; module/single order "
          f"alternated); cpus: {os.cpu_count()}", flush=True)

    results: list[dict[str, Any]] = []
    cluster = start_cluster()
    workdir = Path(cluster.base_dir).parent / ("bench-" + cluster.base_dir.name)
    workdir.mkdir(mode=0o700, exist_ok=True)
    try:
        with cluster.connect() as conn:
            print("server: PostgreSQL {}".format(conn.execute("SHOW server_version").fetchone()[0]), flush=True)
        for rows in args.rows:
            summary = build_template(cluster, rows, args.seed, kind)
            print(f"seeded {rows} legacy rows ({summary['parts']} parts, {summary['documents']} documents, "
                  f"{len(summary['types'])} types) in {summary['build_s']:.1f} s", flush=True)
            results.extend(measure(cluster, rows, sizes, args.repeat, workdir, not args.quiet))
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"schema": kind, "results": results}, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["content_match"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
