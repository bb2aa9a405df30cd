"""After a crash: mark runs whose process is gone as failed and give back the pool slots they held.

A run killed with SIGKILL (out of memory, a reboot, ``kill -9``) cannot report its own end: the instance
still shows it STARTED, and the concurrency slots its steps claimed (pools ``gpu``, ``llm_api``,
``translation_api`` ...) stay taken, so the next run of the job waits for them forever. Under
``dagster-daemon`` run monitoring does this clean-up (deploy/dagster.yaml enables it); a run started
from the CLI has no daemon watching it, so this does the same for runs started on this machine:

    python -m instruct_global.recovery            # then run the job again: it resumes from the cache

A run counts as dead when the process that started it (the pid of its RUN_START event) no longer
exists here. Runs from other machines (their pids mean nothing here) are left alone unless named.
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter


@dataclass(frozen=True)
class ReleasedRun:
    run_id: str
    job_name: str
    pid: int | None
    held_slots: bool  # it held pool slots, now free


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _run_pid(instance: DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event is not None else None


def release_dead_runs(instance: DagsterInstance, run_ids: list[str] | None = None) -> list[ReleasedRun]:
    """Mark STARTED runs whose process is gone (or the runs named) failed and free their slots."""
    statuses = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
    records = instance.get_run_records(RunsFilter(statuses=statuses, run_ids=run_ids or None))
    released = []
    for record in records:
        run = record.dagster_run
        pid = _run_pid(instance, run.run_id)
        if not run_ids and (pid is None or _alive(pid)):
            continue
        instance.report_run_failed(
            run, f"the run's process (pid {pid} on {socket.gethostname()}) is gone: it was killed"
        )
        held = False
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            held = run.run_id in storage.get_concurrency_run_ids()
            storage.free_concurrency_slots_for_run(run.run_id)
        released.append(ReleasedRun(run.run_id, run.job_name, pid, held))
    return released


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_ids", nargs="*", help="runs to release whatever their pid (default: dead ones here)")
    args = parser.parse_args(argv)
    with DagsterInstance.get() as instance:
        released = release_dead_runs(instance, args.run_ids)
    for run in released:
        slots = "its pool slots freed" if run.held_slots else "it held no pool slots"
        print(f"released run {run.run_id} of {run.job_name} (pid {run.pid}): marked failed, {slots}")
    if not released:
        print("no killed runs to release")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
