"""Jobs: the dataset job (corpus → export) and its offline sample variant."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from instruct_global.partitions import language_partitions

SAMPLES = "data/samples"

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
SAMPLE_RUN_CONFIG = {
    "ops": {
        "wikipedia_articles": {
            "config": {"source": "dump", "dump_path": f"{SAMPLES}/wikipedia/{{wiki}}wiki-sample-pages-articles.xml.bz2"}
        },
        "bbc_articles": {"config": {"source": "saved", "saved_pages_dir": f"{SAMPLES}/bbc/{{service}}"}},
    }
}

sample_dataset_job = define_asset_job(
    "sample_dataset_job",
    selection=dataset_selection,
    partitions_def=language_partitions,
    config=SAMPLE_RUN_CONFIG,
    description="The dataset job on the shipped offline samples (data/samples); run from the repository root.",
)
