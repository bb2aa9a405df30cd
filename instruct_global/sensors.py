"""Review sensors: a returned sheet in an inbox re-materialises that language's reviewed rows.

``review_inbox_sensor``: translated rows (``<data dir>/review/inbox``, applied by
``reviewed_instructions``); ``curated_review_inbox_sensor``: backtranslated pairs
(``<data dir>/review/curated/inbox``, applied by ``instruction_dataset``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dagster import AssetKey, RunRequest, SensorEvaluationContext, SkipReason, sensor

from instruct_global.languages import language_keys
from instruct_global.lib.curate.review import curated_review_paths
from instruct_global.lib.translate.review_paths import ReviewPaths, review_paths
from instruct_global.resources.parquet_io import resolve_data_dir

REVIEWED = AssetKey("reviewed_instructions")
# A sheet modified more recently than this may still be being copied or saved: a run that read it
# now could apply the rows written so far and then archive the file under the writer's hands.
SETTLE_SECONDS = 30.0


def _inbox_requests(paths_for: Callable[[Path, str], ReviewPaths], op_name: str) -> list[RunRequest] | SkipReason:
    """One run per returned sheet and version, oldest first; a sheet still changing waits."""
    data_dir = resolve_data_dir(None)
    now = time.time()
    found, settling = [], []
    for lang in language_keys():
        for sheet in paths_for(data_dir, lang).returned_sheets():
            try:
                stat = sheet.stat()
            except FileNotFoundError:  # archived by a run between listing and stat
                continue
            if now - stat.st_mtime < SETTLE_SECONDS:
                settling.append(sheet.name)
                continue
            found.append((stat.st_mtime_ns, lang, sheet, stat))
    requests = [
        RunRequest(
            run_key=f"{sheet.name}:{stat.st_mtime_ns}:{stat.st_size}",
            partition_key=lang,
            run_config={"ops": {op_name: {"config": {"returned_sheet": str(sheet)}}}},
            tags={"instruct_global/review_sheet": sheet.name},
        )
        for _, lang, sheet, stat in sorted(found, key=lambda item: item[:2])  # oldest sheet first
    ]
    if not requests:
        if settling:
            return SkipReason(f"waiting for {', '.join(settling)} to stay unchanged for {SETTLE_SECONDS:.0f}s")
        return SkipReason(f"no returned sheets in {paths_for(data_dir, 'x').inbox_dir}")
    return requests


@sensor(asset_selection=[REVIEWED, AssetKey("review_sheet")], minimum_interval_seconds=60)
def review_inbox_sensor(context: SensorEvaluationContext):
    """Watches ``<data dir>/review/inbox/<lang>.csv|.xlsx``; one run per returned sheet and version.

    The run applies the sheet (all rows or none), archives it, and writes a fresh sheet of what is
    still unreviewed. A sheet is picked up once it has not changed for ``SETTLE_SECONDS``.
    """
    return _inbox_requests(review_paths, "reviewed_instructions")


@sensor(asset_selection=[AssetKey("instruction_dataset"), AssetKey("curated_review_sheet")],
        minimum_interval_seconds=60)
def curated_review_inbox_sensor(context: SensorEvaluationContext):
    """Watches ``<data dir>/review/curated/inbox/<lang>.csv|.xlsx`` (sheets of backtranslated pairs)."""
    return _inbox_requests(curated_review_paths, "instruction_dataset")
