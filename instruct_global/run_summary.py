"""A short summary of one run: per asset the rows, the drops and where the file is; then the checks.

``make sample`` prints it after the job so the result is not buried in the event log:
``python -m instruct_global.run_summary --job sample_corpus_job --partition yor``.
Reads the Dagster instance of ``$DAGSTER_HOME``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import DagsterEventType, DagsterInstance, RunsFilter


@dataclass(frozen=True)
class AssetLine:
    asset: str
    rows: int | None
    dropped: int | None
    path: str | None
    note: str = ""  # e.g. why a stage stepped aside


@dataclass(frozen=True)
class CheckLine:
    asset: str
    check: str
    passed: bool
    severity: str


def _value(metadata: Mapping[str, Any], key: str) -> Any:
    item = metadata.get(key)
    return getattr(item, "value", item)


def asset_lines(metadata_by_asset: Sequence[tuple[str, Mapping[str, Any]]]) -> list[AssetLine]:
    lines = []
    for asset, metadata in metadata_by_asset:
        rows = _value(metadata, "row_count")
        dropped = _value(metadata, "dropped_total")
        if dropped is None:
            dropped = _value(metadata, "rejects")
        path = _value(metadata, "path")
        note = f"skipped: {_value(metadata, 'skip_reason')}" if _value(metadata, "skipped") is True else ""
        lines.append(AssetLine(asset, None if rows is None else int(rows),
                               None if dropped is None else int(dropped), None if path is None else str(path),
                               note))
    return lines


def render(status: str, run_id: str, assets: Sequence[AssetLine], checks: Sequence[CheckLine]) -> str:
    def cell(value: int | None) -> str:
        return "-" if value is None else str(value)

    width = max([len(a.asset) for a in assets] + [5])
    out = [f"Run {run_id[:8]}: {status}", "", f"{'asset':<{width}}  {'rows':>6}  {'dropped':>7}  file"]
    out += [f"{a.asset:<{width}}  {cell(a.rows):>6}  {cell(a.dropped):>7}  {a.path or '-'}"
            + (f"\n{'':<{width}}  {a.note}" if a.note else "") for a in assets]
    if checks:
        out += ["", "checks:"]
        out += [f"  {'passed' if c.passed else 'FAILED (' + c.severity.lower() + ')'}  {c.asset}: {c.check}"
                for c in checks]
    return "\n".join(out)


def summarise(instance: DagsterInstance, job: str, partition: str) -> str:
    runs = instance.get_runs(RunsFilter(job_name=job, tags={"dagster/partition": partition}), limit=1)
    if not runs:
        return f"No run of {job} for partition {partition} in this instance ($DAGSTER_HOME)."
    run = runs[0]
    materialised: list[tuple[str, Mapping[str, Any]]] = []
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        mat = entry.asset_materialization
        if mat is not None:
            materialised.append((mat.asset_key.to_user_string(), mat.metadata))
    checks = []
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if evaluation is not None:
            checks.append(CheckLine(evaluation.asset_key.to_user_string(), evaluation.check_name,
                                    bool(evaluation.passed), str(evaluation.severity.value)))
    return render(run.status.value, run.run_id, asset_lines(materialised), checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True)
    parser.add_argument("--partition", required=True)
    args = parser.parse_args(argv)
    with DagsterInstance.get() as instance:
        print(summarise(instance, args.job, args.partition))
    return 0


if __name__ == "__main__":
    sys.exit(main())
