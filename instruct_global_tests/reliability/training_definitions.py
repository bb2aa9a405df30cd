"""A code location for the training crash runs: a stand-in ``instruction_dataset`` (the curate stage's
contract), the package's export and train assets, and ``finetune_job`` (``finetuned_model`` alone, the
export being materialised by the test first). Hosted fine-tuning goes to ``RELIABILITY_FINETUNE_URL``.
"""
# No "from __future__ import annotations": Dagster reads the stand-in asset's annotations.

import os

from dagster import Definitions, define_asset_job

from instruct_global.assets.export import sft_dataset
from instruct_global.assets.train import finetuned_model
from instruct_global.partitions import language_partitions
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.finetuning import HuggingFaceHubResource, OpenAIFineTuningResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.reliability.stand_in_dataset import instruction_dataset

FINETUNE_KEY = "sk-reliability-finetune-key-0123456789"

finetune_job = define_asset_job("finetune_job", selection=[finetuned_model.key], partitions_def=language_partitions)

defs = Definitions(
    assets=[instruction_dataset, sft_dataset, finetuned_model],
    jobs=[finetune_job],
    resources={
        "io_manager": PartitionedParquetIOManager(),
        "call_cache": CallCacheResource(),
        "hub": HuggingFaceHubResource(),
        "openai_finetuning": OpenAIFineTuningResource(
            api_key=FINETUNE_KEY, base_url=os.environ.get("RELIABILITY_FINETUNE_URL", "http://127.0.0.1:9/v1"),
        ),
    },
)
