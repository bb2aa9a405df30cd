"""The one Definitions object of the code location.

Resources are chosen here; secrets come only through ``EnvVar`` and are read at run time.
"""

from __future__ import annotations

from dagster import Definitions, load_assets_from_modules

from instruct_global import jobs, schedules
from instruct_global.assets import corpus
from instruct_global.resources.http import HttpFetcherResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager

all_assets = load_assets_from_modules([corpus])

defs = Definitions(
    assets=all_assets,
    jobs=[jobs.dataset_job, jobs.sample_dataset_job],
    schedules=[schedules.weekly_dataset_backfill],
    resources={
        "io_manager": PartitionedParquetIOManager(),
        "http": HttpFetcherResource(),
    },
)
