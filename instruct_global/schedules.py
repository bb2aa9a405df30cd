"""A schedule that backfills every language partition of the dataset job."""

from __future__ import annotations

from dagster import RunRequest, ScheduleEvaluationContext, schedule

from instruct_global.jobs import dataset_job
from instruct_global.languages import language_keys


@schedule(job=dataset_job, cron_schedule="0 3 * * 1", execution_timezone="UTC")
def weekly_dataset_backfill(context: ScheduleEvaluationContext):
    """Every Monday 03:00 UTC, one run per language; finished paid calls come from the cache."""
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    for key in language_keys():
        yield RunRequest(run_key=f"{key}-{stamp}", partition_key=key)
