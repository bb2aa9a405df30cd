"""Jobs: the corpus job, its offline sample variant, the dataset job (corpus → export), the curate job
(corpus → instruction dataset from backtranslated pairs, no translator needed) and the training job
(train → evaluate)."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import AssetSelection, PartitionedConfig, define_asset_job

from instruct_global.partitions import language_partitions

corpus_selection = AssetSelection.groups("corpus")
dataset_selection = AssetSelection.groups("corpus", "generate", "translate", "curate", "export")
curate_selection = AssetSelection.groups("corpus", "curate")
training_selection = AssetSelection.groups("train", "evaluate")

corpus_job = define_asset_job(
    "corpus_job",
    selection=corpus_selection,
    partitions_def=language_partitions,
    description="Clean corpora for one language from its Wikipedia, its BBC service and the user's datasets.",
)

# Run monitoring (dagster.yaml, the daemon) fails a run that passes its dagster/max_runtime (seconds):
# a hung provider or a stuck GPU must not hold the pools for days.
DATASET_MAX_RUNTIME_S = 12 * 3600
TRAINING_MAX_RUNTIME_S = 48 * 3600

dataset_job = define_asset_job(
    "dataset_job",
    selection=dataset_selection,
    partitions_def=language_partitions,
    tags={"dagster/max_runtime": str(DATASET_MAX_RUNTIME_S)},
    description="Corpus to the instruction dataset for one language (needs the LLM and translator).",
)

curate_job = define_asset_job(
    "curate_job",
    selection=curate_selection,
    partitions_def=language_partitions,
    tags={"dagster/max_runtime": str(DATASET_MAX_RUNTIME_S)},
    description="Corpus to the instruction dataset from curated backtranslated pairs (an LLM, no translator); "
    "template and self-instruct rows join when reviewed_instructions exists for the language.",
)

training_job = define_asset_job(
    "training_job",
    selection=training_selection,
    partitions_def=language_partitions,
    tags={"dagster/max_runtime": str(TRAINING_MAX_RUNTIME_S)},
    description="Fine-tune on the exported dataset of one language and score base against fine-tuned.",
)

# Offline: the shipped sample Wikipedia dump and saved BBC pages go through the same parsing and
# extraction code; `make sample` runs this one.
SAMPLE_RUN_CONFIG_PATH = Path(__file__).parent / "configs" / "sample_run.yaml"
SAMPLE_RUN_CONFIG = yaml.safe_load(SAMPLE_RUN_CONFIG_PATH.read_text(encoding="utf-8"))

sample_corpus_job = define_asset_job(
    "sample_corpus_job",
    selection=corpus_selection,
    partitions_def=language_partitions,
    # a PartitionedConfig, not a plain dict: the CLI's partition tag would otherwise replace it
    config=PartitionedConfig(
        partitions_def=language_partitions, run_config_for_partition_key_fn=lambda _key: SAMPLE_RUN_CONFIG
    ),
    description="The corpus job on the shipped offline samples (data/samples); run from the repository root.",
)
