"""kill -9 of the migrating process at 10 seeded random moments on 100k legacy rows; each time a re-run completes
and the result is identical to a clean run: same mapped columns (md5 over every meta_items row but created_at),
zero duplicates, zero missing rows, and a ledger that adds up.

Moments (seeded, so a failure reproduces): 2 before the first batch (the module is running its preflight), 6
during the copy (after batch k, plus a random sub-batch delay, so some kills land inside a batch and some between
two), 1 right after the last batch, 1 after the run was marked completed. Even moments kill the whole process
group (ansible, worker, module); odd ones kill only the AnsiballZ python child, and ansible must then report the
failure. Each moment starts from a fresh copy of the seeded database (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

import pytest
from faultlib import (
    FAULT_SEED,
    clone_database,
    fingerprint,
    finish,
    kill_group,
    ledger_problems,
    module_child,
    run_module,
    start_module,
    wait_for,
)

BATCH = 2000
BATCHES = 50  # 99,975 pending rows / 2000 (the clean run confirms it)


def _moments() -> list[dict[str, Any]]:
    rng = random.Random(FAULT_SEED)
    moments = [{"phase": "before", "delay": rng.uniform(0.0, 0.25)} for _moment in range(2)]
    moments += [{"phase": "during", "batch": rng.randint(1, BATCHES - 2), "delay": rng.uniform(0.0, 0.08)}
                for _moment in range(6)]
    moments.append({"phase": "after-last-batch", "batch": BATCHES, "delay": 0.0})
    moments.append({"phase": "after-completed", "delay": rng.uniform(0.0, 0.3)})
    for number, moment in enumerate(moments):
        moment["kill"] = "group" if number % 2 == 0 else "module-child"
    return moments


MOMENTS = _moments()


def _ledger_state(conn: Any, run_id: str) -> tuple[str | None, int]:
    if conn.execute("SELECT to_regclass('relmigrate.runs') IS NULL").fetchone()[0]:
        return None, 0
    row = conn.execute("SELECT status, batches FROM relmigrate.runs WHERE run_id = %s", (run_id,)).fetchone()
    return (row[0], row[1]) if row else (None, 0)


@pytest.mark.parametrize("number", range(len(MOMENTS)),
                         ids=[f"{n}-{m['phase']}-{m.get('batch', '')}-{m['kill']}" for n, m in enumerate(MOMENTS)])
def test_kill9_then_rerun_matches_clean_run(pg_cluster: Any, template_100k: str, faults_env: dict[str, str],
                                            clean_fingerprint: dict[str, Any], number: int) -> None:
    moment = MOMENTS[number]
    assert clean_fingerprint["batches"] == BATCHES
    name = clone_database(pg_cluster, template_100k, "f_kill")
    url = pg_cluster.url(name)
    killed_run = f"killed-{number}"
    try:
        with pg_cluster.connect(name) as watcher:
            started = time.monotonic()
            proc = start_module(faults_env, "relationship_items", {"batch_size": BATCH, "run_id": killed_run},
                                url=url)
            try:
                if moment["phase"] == "before":
                    assert wait_for(lambda: module_child(proc) is not None, 60), "module never started"
                elif moment["phase"] in ("during", "after-last-batch"):
                    assert wait_for(lambda: _ledger_state(watcher, killed_run)[1] >= moment["batch"], 120,
                                    0.005), "batch never reached"
                else:
                    assert wait_for(lambda: _ledger_state(watcher, killed_run)[0] == "completed", 120, 0.005)
                time.sleep(moment["delay"])
                child = module_child(proc)
                if moment["kill"] == "module-child" and child is not None:
                    os.kill(child, signal.SIGKILL)
                    killed = finish(proc, started, 120)
                    if killed.rc == 0:
                        # the kill came after the module had written its result: that result must be complete
                        assert killed.host_result()["pending_after"] == 0, killed.text
                    else:
                        # ansible itself survives and must say that the module died (rc 137: SIGKILL)
                        result = killed.host_result()
                        assert result.get("_status") == "FAILED!" and result.get("rc") == 137, killed.text
                        assert "Killed" in result.get("module_stderr", ""), result
                else:
                    kill_group(proc)
                    proc.communicate()
            finally:
                if proc.poll() is None:
                    kill_group(proc)
                    proc.communicate()
            status_at_kill, batches_at_kill = _ledger_state(watcher, killed_run)

            rerun = run_module(faults_env, "relationship_items",
                               {"batch_size": BATCH, "run_id": f"rerun-{number}", "lock_wait": 60}, url=url)
            assert rerun.rc == 0, rerun.text
            result = rerun.host_result()
            killed_migrated = watcher.execute(
                "SELECT coalesce((SELECT migrated FROM relmigrate.runs WHERE run_id = %s), 0)", (killed_run,)
            ).fetchone()[0] if status_at_kill is not None else 0
            # together, the killed run and the re-run wrote every pending row exactly once
            assert killed_migrated + result["migrated"] == clean_fingerprint["migrated"], (killed_migrated, result)
            if status_at_kill == "completed":
                assert result["migrated"] == 0 and not result["changed"], result
            assert result["pending_after"] == 0, result

            got = fingerprint(watcher)
            assert got["duplicates"] == 0 and got["missing_legacy"] == 0, got
            for key in ("rows", "items_md5", "item_types_md5", "legacy_md5"):
                assert got[key] == clean_fingerprint[key], (key, moment, status_at_kill, batches_at_kill)
            assert ledger_problems(watcher) == []
            status_after = _ledger_state(watcher, killed_run)[0]
            # a killed run is never left looking alive: the next run marks it interrupted
            assert status_after in (None, "interrupted", "completed"), status_after
            if status_at_kill == "running":
                assert status_after == "interrupted"
    finally:
        pg_cluster.drop_database(name)
