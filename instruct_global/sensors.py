"""The review sensor: a returned sheet in the inbox re-materialises that language's reviewed rows."""

from __future__ import annotations

from dagster import AssetKey, RunRequest, SensorEvaluationContext, SkipReason, sensor

from instruct_global.languages import language_keys
from instruct_global.lib.review_paths import review_paths
from instruct_global.resources.parquet_io import resolve_data_dir

REVIEWED = AssetKey("reviewed_instructions")


@sensor(asset_selection=[REVIEWED, AssetKey("review_sheet")], minimum_interval_seconds=60)
def review_inbox_sensor(context: SensorEvaluationContext):
    """Watches ``<data dir>/review/inbox/<lang>.csv|.xlsx``; one run per returned sheet and version.

    The run applies the sheet (all rows or none), archives it, and writes a fresh sheet of what is
    still unreviewed.
    """
    data_dir = resolve_data_dir(None)
    requests = []
    for lang in language_keys():
        for sheet in review_paths(data_dir, lang).returned_sheets():
            stat = sheet.stat()
            requests.append(RunRequest(
                run_key=f"{sheet.name}:{stat.st_mtime_ns}:{stat.st_size}",
                partition_key=lang,
                run_config={"ops": {"reviewed_instructions": {"config": {"returned_sheet": str(sheet)}}}},
                tags={"instruct_global/review_sheet": sheet.name},
            ))
    if not requests:
        return SkipReason(f"no returned sheets in {data_dir / 'review' / 'inbox'}")
    return requests
