"""The one Definitions object of the code location.

Backends are chosen here from the environment (see resources/selection.py and the README);
secrets come only through ``EnvVar`` and are read at run time.
"""

from __future__ import annotations

import os

from dagster import Definitions, load_assets_from_modules

from instruct_global import jobs, schedules, sensors
from instruct_global.assets import corpus, curate, evaluate, export, generate, human_eval, train, translate
from instruct_global.resources.finetuning import finetuning_resources
from instruct_global.resources.http import HttpFetcherResource
from instruct_global.resources.label_studio import label_studio_resources
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global.resources.selection import select_resources

all_assets = load_assets_from_modules([corpus, generate, translate, curate, export, train, evaluate, human_eval])

# Label Studio is optional: its resource and sensor join only where LABEL_STUDIO_URL is set.
_label_studio = label_studio_resources(os.environ)
_sensors = [sensors.review_inbox_sensor, sensors.curated_review_inbox_sensor, sensors.human_eval_inbox_sensor]

defs = Definitions(
    assets=all_assets,
    jobs=[jobs.corpus_job, jobs.sample_corpus_job, jobs.dataset_job, jobs.curate_job, jobs.training_job],
    schedules=[schedules.weekly_dataset_backfill],
    sensors=[*_sensors, *([sensors.label_studio_sensor] if _label_studio else [])],
    resources={
        "io_manager": PartitionedParquetIOManager(),
        "http": HttpFetcherResource(),
        **select_resources(os.environ),
        **finetuning_resources(os.environ),
        **_label_studio,
    },
)
