"""Wait for the newest backfill of a job and report each language's run when they have all finished.

``make backfill`` runs it after ``dagster job backfill`` (whose runs start in the background):
``python -m instruct_global.backfill_report --job corpus_job``. Exits 1 when a run failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def newest_backfill_runs(instance: DagsterInstance, job: str) -> tuple[str | None, list]:
    runs = [r for r in instance.get_runs(RunsFilter(job_name=job), limit=200) if r.tags.get("dagster/backfill")]
    if not runs:
        return None, []
    backfill = runs[0].tags["dagster/backfill"]  # newest first
    return backfill, [r for r in runs if r.tags.get("dagster/backfill") == backfill]


def wait_and_report(instance: DagsterInstance, job: str, timeout_s: float, poll_s: float = 2.0) -> tuple[str, bool]:
    deadline = time.monotonic() + timeout_s
    backfill, runs = newest_backfill_runs(instance, job)
    while runs and any(r.status not in FINISHED for r in runs) and time.monotonic() < deadline:
        time.sleep(poll_s)
        backfill, runs = newest_backfill_runs(instance, job)
    if not runs:
        return f"No backfill of {job} in this instance ($DAGSTER_HOME).", False
    lines = [f"Backfill {backfill} of {job}: {len(runs)} runs"]
    for run in sorted(runs, key=lambda r: r.tags.get("dagster/partition", "")):
        lines.append(f"  {run.tags.get('dagster/partition', '?'):<6} {run.status.value:<9} run {run.run_id[:8]}")
    ok = all(r.status == DagsterRunStatus.SUCCESS for r in runs)
    if any(r.status not in FINISHED for r in runs):
        lines.append(f"  (still running after {timeout_s:.0f} s)")
    elif not ok:
        lines.append("  a run failed: `make ui` (Runs) or `python -m instruct_global.run_summary` shows which step")
    return "\n".join(lines), ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True)
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait (default 6 h)")
    args = parser.parse_args(argv)
    with DagsterInstance.get() as instance:
        text, ok = wait_and_report(instance, args.job, args.timeout)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
