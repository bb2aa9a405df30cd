"""The one Definitions object of the code location.

Backends are chosen here from the environment (see resources/selection.py and the README);
secrets come only through ``EnvVar`` and are read at run time.
"""

from __future__ import annotations

import os

from dagster import Definitions, load_assets_from_modules

from instruct_global import jobs, schedules, sensors
from instruct_global.assets import corpus, curate, evaluate, export, generate, train, translate
from instruct_global.resources.finetuning import finetuning_resources
from instruct_global.resources.http import HttpFetcherResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global.resources.selection import select_resources

all_assets = load_assets_from_modules([corpus, generate, translate, curate, export, train, evaluate])

defs = Definitions(
    assets=all_assets,
    jobs=[jobs.corpus_job, jobs.sample_corpus_job, jobs.dataset_job, jobs.curate_job, jobs.training_job],
    schedules=[schedules.weekly_dataset_backfill],
    sensors=[sensors.review_inbox_sensor, sensors.curated_review_inbox_sensor],
    resources={
        "io_manager": PartitionedParquetIOManager(),
        "http": HttpFetcherResource(),
        **select_resources(os.environ),
        **finetuning_resources(os.environ),
    },
)
