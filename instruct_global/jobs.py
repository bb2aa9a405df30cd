"""Jobs: the dataset job (corpus → export) and its offline sample variant."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import AssetSelection, PartitionedConfig, define_asset_job

from instruct_global.partitions import language_partitions

corpus_selection = AssetSelection.groups("corpus")
dataset_selection = AssetSelection.groups("corpus")

# The same assets, live: Wikipedia's API and bbc.com (needs the network).
dataset_job = define_asset_job(
    "dataset_job",
    selection=dataset_selection,
    partitions_def=language_partitions,
    description="Corpus to dataset for one language partition, from the live sources.",
)

# Offline: the shipped sample Wikipedia dump and saved BBC pages go through the same parsing and
# extraction code; `make sample` runs this one.
SAMPLE_RUN_CONFIG_PATH = Path(__file__).parent / "configs" / "sample_run.yaml"
SAMPLE_RUN_CONFIG = yaml.safe_load(SAMPLE_RUN_CONFIG_PATH.read_text(encoding="utf-8"))

sample_dataset_job = define_asset_job(
    "sample_dataset_job",
    selection=dataset_selection,
    partitions_def=language_partitions,
    # a PartitionedConfig, not a plain dict: the CLI's partition tag would otherwise replace it
    config=PartitionedConfig(
        partitions_def=language_partitions, run_config_for_partition_key_fn=lambda _key: SAMPLE_RUN_CONFIG
    ),
    description="The dataset job on the shipped offline samples (data/samples); run from the repository root.",
)
