"""Review sensors: a returned sheet in an inbox re-materialises that language's reviewed rows.

``human_eval_inbox_sensor``: blind evaluation sheets (``<data dir>/human_eval/inbox``, applied by
``human_eval_scores``); ``label_studio_sensor``: Label Studio as the front end of all three rounds.

``review_inbox_sensor``: translated rows (``<data dir>/review/inbox``, applied by
``reviewed_instructions``); ``curated_review_inbox_sensor``: backtranslated pairs
(``<data dir>/review/curated/inbox``, applied by ``instruction_dataset``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from dagster import AssetKey, RunRequest, SensorEvaluationContext, SkipReason, sensor

from instruct_global.languages import language_keys
from instruct_global.lib.curate.review import curated_review_paths
from instruct_global.lib.evaluate.human_eval import human_eval_paths
from instruct_global.lib.evaluate.label_studio import EVAL_KIND, REVIEW_KIND, sync_round
from instruct_global.lib.translate.review_paths import ReviewPaths, review_paths
from instruct_global.resources.label_studio import LabelStudioResource
from instruct_global.resources.parquet_io import resolve_data_dir

REVIEWED = AssetKey("reviewed_instructions")
HUMAN_EVAL_SCORES = AssetKey("human_eval_scores")
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


@sensor(asset_selection=[HUMAN_EVAL_SCORES], minimum_interval_seconds=60)
def human_eval_inbox_sensor(context: SensorEvaluationContext):
    """Watches ``<data dir>/human_eval/inbox/<lang>.csv|.xlsx`` (returned blind evaluation sheets)."""
    return _inbox_requests(human_eval_paths, "human_eval_scores")


# (round, labeling config, paths, the assets a returned sheet re-materialises: the one that applies it,
# then the one that writes the next sheet, as for a sheet returned to the inbox)
LABEL_STUDIO_ROUNDS = (
    ("review", REVIEW_KIND, review_paths, (REVIEWED, AssetKey("review_sheet"))),
    ("curated_review", REVIEW_KIND, curated_review_paths,
     (AssetKey("instruction_dataset"), AssetKey("curated_review_sheet"))),
    ("human_eval", EVAL_KIND, human_eval_paths, (HUMAN_EVAL_SCORES,)),
)  # fmt: skip


@sensor(
    asset_selection=[REVIEWED, AssetKey("review_sheet"), AssetKey("instruction_dataset"),
                     AssetKey("curated_review_sheet"), HUMAN_EVAL_SCORES],
    minimum_interval_seconds=120,
)  # fmt: skip
def label_studio_sensor(context: SensorEvaluationContext, label_studio: LabelStudioResource):
    """Label Studio as the front end of every review and evaluation round (only where it is configured).

    Each tick pushes the rows of each outbox sheet as tasks (new or changed rows only), and when
    annotations were submitted since the last pull, writes them as a returned sheet under
    ``<round dir>/label_studio/`` and requests the run that applies it, exactly as for a sheet a
    reviewer returned: the same validation, the same stores.
    """
    data_dir = resolve_data_dir(None)
    cursor = json.loads(context.cursor) if context.cursor else {}
    requests, pushed = [], 0
    with label_studio.client() as client:
        for round_name, kind, paths_for, targets in LABEL_STUDIO_ROUNDS:
            for lang in language_keys():
                paths = paths_for(data_dir, lang)
                key = f"{round_name}/{lang}"
                result = sync_round(client, round_name, kind, lang, paths.outbox_csv, paths.label_studio_dir,
                                    cursor.get(key, ""))  # fmt: skip
                pushed += result.pushed
                if result.pulled_sheet is None:
                    continue
                cursor[key] = result.cursor
                op = targets[0].path[-1]
                requests.append(
                    RunRequest(
                        run_key=f"label-studio:{result.pulled_sheet.name}:{round_name}",
                        partition_key=lang,
                        asset_selection=list(targets),
                        run_config={"ops": {op: {"config": {"returned_sheet": str(result.pulled_sheet)}}}},
                        tags={"instruct_global/label_studio_round": round_name},
                    )
                )
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    if not requests:
        return SkipReason(f"pushed {pushed} new task(s); no new annotations in Label Studio")
    return requests
