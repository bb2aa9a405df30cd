"""Corpus assets: Wikipedia and BBC News in the partition's language, and the user's datasets."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.


from collections import Counter
from pathlib import Path
from typing import Literal

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    Config,
    MetadataValue,
    Output,
    ResourceParam,
    asset,
    multi_asset,
)
from pydantic import Field

from instruct_global.assets.common import drop_metadata, outside_service_retry, staged_partitions
from instruct_global.frames import CleanDocumentsOutput, DocumentsOutput, RejectsOutput, SourceRecordsFrame
from instruct_global.lib.common.frame_stream import ParquetSource, StagedParquet, schema_with
from instruct_global.lib.common.plots import histogram_markdown
from instruct_global.lib.common.report import (
    LENGTH_BINS_CHARS,
    markdown_counts,
    markdown_preview,
)
from instruct_global.lib.corpus.bbc import BBC_EXTRA_COLUMNS, BbcScraper
from instruct_global.lib.corpus.bbc_saved import iter_saved_articles
from instruct_global.lib.corpus.checks import duplicate_rate, lid_pass_rate, min_documents
from instruct_global.lib.corpus.cleaning import (
    CLEAN_ARROW_COLUMNS,
    REJECT_ARROW_COLUMNS,
    CleaningConfig,
    clean_corpus_stream,
)
from instruct_global.lib.corpus.documents import WrittenDocuments, documents_schema, write_documents
from instruct_global.lib.corpus.source_records import RECORD_COLUMNS, load_source_records
from instruct_global.lib.corpus.wikipedia import (
    WIKIPEDIA_EXTRA_COLUMNS,
    DumpStats,
    WikipediaApiClient,
    iter_dump_articles,
)
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.http import HttpFetcherResource
from instruct_global.resources.parquet_io import ROW_SOURCE, PartitionedParquetIOManager


class WikipediaConfig(Config):
    source: Literal["api", "dump"] = Field(
        default="api", description="api: MediaWiki API for up to max_articles; dump: a pages-articles.xml.bz2 file"
    )
    max_articles: int = Field(default=500, ge=0, description="API mode: how many articles to pull (0: none)")
    api_url: str = Field(default="https://{wiki}.wikipedia.org/w/api.php", description="{wiki} is the wiki code")
    dump_path: str = Field(
        default="",
        description="Dump mode: path of <wiki>wiki-...-pages-articles.xml.bz2; {wiki} is replaced by the wiki code",
    )
    dump_max_articles: int | None = Field(default=None, description="Dump mode: stop after this many (None: all)")
    workers: int = Field(
        default=0, ge=0, description="Dump mode: processes converting wikitext (0: one per CPU, 1: this process)"
    )


class BbcConfig(Config):
    source: Literal["live", "saved"] = Field(
        default="live", description="live: sitemaps and pages of bbc.com; saved: .html files in saved_pages_dir"
    )
    base_url: str = "https://www.bbc.com"
    max_articles: int = Field(default=200, ge=0)
    saved_pages_dir: str = Field(default="", description="Saved mode: folder of pages; {service} is replaced")
    saved_pages_license: str = Field(default="", description=(
        "Saved mode: the licence of pages that are not the BBC's own text (your own test pages, say); "
        "empty: the BBC's copyright, which the default allowed licences keep out of the dataset"))


def _document_metadata(written: WrittenDocuments, stats: dict[str, object]) -> dict[str, object]:
    lengths = pd.Series(written.lengths, dtype="int64")
    furniture = stats.get("furniture_removed")
    extra: dict[str, object] = {}
    if isinstance(furniture, dict):  # BBC: page furniture cut out by structure and labels, by kind
        extra["furniture_removed"] = MetadataValue.json(furniture)
        extra["furniture_removed_total"] = sum(furniture.values())
    return {
        **extra,
        "documents": written.count,
        "characters": int(lengths.sum()),
        "preview": MetadataValue.md(markdown_preview(written.preview, ["title", "url", "text"])),
        "length_histogram": MetadataValue.md(histogram_markdown(lengths, LENGTH_BINS_CHARS, "characters")),
        "fetch_stats": MetadataValue.json(stats),
    }


@asset(
    group_name="corpus",
    partitions_def=language_partitions,
    dagster_type=DocumentsOutput,
    pool="wikipedia",
    retry_policy=outside_service_retry(),
    description="Articles of the language's Wikipedia: the MediaWiki API for small pulls, a dump file for all.",
)
def wikipedia_articles(
    context: AssetExecutionContext, config: WikipediaConfig, http: HttpFetcherResource,
    io_manager: ResourceParam[PartitionedParquetIOManager],
) -> Output[StagedParquet]:  # fmt: skip
    lang = partition_language(context.partition_key)
    wiki = lang.require("wikipedia_code", "Wikipedia")
    # Written a batch of articles at a time: a whole Wikipedia is never held in memory. A failure
    # (a truncated dump, an unreachable API) removes what was staged; the stored partition stays.
    with staged_partitions(io_manager, context.partition_key, {"wikipedia_articles": documents_schema(
            WIKIPEDIA_EXTRA_COLUMNS)}) as sinks:  # fmt: skip
        sink = sinks["wikipedia_articles"]
        if config.source == "dump":
            if not config.dump_path:
                raise ValueError("wikipedia_articles: source is 'dump' but dump_path is empty")
            path = Path(config.dump_path.format(wiki=wiki))
            dump_stats = DumpStats()
            written = write_documents(iter_dump_articles(
                path, lang.key, config.dump_max_articles, wiki=wiki, stats=dump_stats, workers=config.workers
            ), sink, WIKIPEDIA_EXTRA_COLUMNS)
            stats: dict[str, object] = {"mode": "dump", "dump": str(path), **dump_stats.as_dict()}
        else:
            with http.get_fetcher() as fetcher:
                client = WikipediaApiClient(fetcher, wiki, lang.key, api_url=config.api_url)
                # A failed request raises SourceUnavailableError: the step fails, the stored file stays.
                written = write_documents(client.iter_articles(config.max_articles), sink, WIKIPEDIA_EXTRA_COLUMNS)
                stats = {"mode": "api", **client.stats.as_dict(), **fetcher.stats.as_dict()}
        staged = sink.staged_file()
    if not written.count:
        context.log.warning(f"{lang.name}: the Wikipedia source answered but has no articles ({stats['mode']})")
    else:
        context.log.info(f"{lang.name}: {written.count} Wikipedia articles ({stats['mode']})")
    return Output(staged, metadata=_document_metadata(written, stats))


@asset(
    group_name="corpus",
    partitions_def=language_partitions,
    dagster_type=DocumentsOutput,
    pool="bbc",
    retry_policy=outside_service_retry(),
    description="BBC News articles of the language's service, main text only.",
)
def bbc_articles(
    context: AssetExecutionContext, config: BbcConfig, http: HttpFetcherResource,
    io_manager: ResourceParam[PartitionedParquetIOManager],
) -> Output[StagedParquet]:  # fmt: skip
    lang = partition_language(context.partition_key)
    service = lang.bbc_service
    with staged_partitions(io_manager, context.partition_key, {"bbc_articles": documents_schema(BBC_EXTRA_COLUMNS)}) as sinks:
        sink = sinks["bbc_articles"]
        if service is None:
            # Not an error: the corpus simply has no BBC part for this language (Zulu, for one).
            context.log.warning(f"{lang.name} ({lang.key}) has no BBC News service; bbc_articles is empty")
            written = write_documents([], sink, BBC_EXTRA_COLUMNS)
            return Output(sink.staged_file(),
                          metadata=_document_metadata(written, {"mode": "none", "reason": "no BBC service"}))  # fmt: skip
        if config.source == "saved":
            folder = Path(config.saved_pages_dir.format(service=service))
            furniture: Counter[str] = Counter()
            rows = iter_saved_articles(folder, service, lang.key, config.max_articles, furniture=furniture)
            if config.saved_pages_license:
                rows = ({**row, "license": config.saved_pages_license} for row in rows)
            written = write_documents(rows, sink, BBC_EXTRA_COLUMNS)
            stats: dict[str, object] = {
                "mode": "saved", "folder": str(folder), "pages": written.count, "furniture_removed": dict(furniture),
            }
        else:
            with http.get_fetcher() as fetcher:
                scraper = BbcScraper(fetcher, service, lang.key, base_url=config.base_url)
                written = write_documents(scraper.iter_articles(config.max_articles), sink, BBC_EXTRA_COLUMNS)
                # Nothing read because requests failed: fail the step so the stored partition stays.
                scraper.raise_if_unavailable()
                stats = {"mode": "live", **scraper.stats.as_dict(), **fetcher.stats.as_dict()}
        staged = sink.staged_file()
    if not written.count:
        context.log.warning(
            f"{lang.name}: 0 BBC articles ({stats['mode']}); the source answered but gave no articles: {stats}"
        )
    else:
        context.log.info(f"{lang.name}: {written.count} BBC articles ({stats['mode']})")
    return Output(staged, metadata=_document_metadata(written, stats))


class SourceRecordsConfig(Config):
    schema_csv: str = Field(
        default="data/schema/{lang}/input_schema.csv",
        description="Input schema CSV (file_name, category, description, num_variables, variable_N_description); "
        "{lang} is the partition's ISO 639-3 key; source files are resolved relative to it",
    )
    required: bool = Field(default=False, description="Fail when the schema file is missing (else: no records)")


@asset(
    group_name="corpus",
    partitions_def=language_partitions,
    dagster_type=SourceRecordsFrame,
    description="Rows of the user's labelled datasets described by an input schema CSV, variables by name.",
)
def source_records(context: AssetExecutionContext, config: SourceRecordsConfig) -> Output[pd.DataFrame]:
    lang = partition_language(context.partition_key)
    schema = Path(config.schema_csv.format(lang=lang.key))
    if not schema.exists() and not config.required:
        context.log.warning(f"no input schema for {lang.name} at {schema}: source_records is empty")
        frame = load_source_records_empty()
    else:
        frame = load_source_records(schema)
    per_dataset = frame.groupby("dataset").size().to_dict() if not frame.empty else {}
    return Output(frame, metadata={
        "records": len(frame),
        "schema": MetadataValue.path(str(schema)),
        "records_per_dataset": MetadataValue.md(markdown_counts(per_dataset, "dataset")),
        "categories": MetadataValue.json(sorted(set(frame["category"]))),
        "preview": MetadataValue.md(markdown_preview(frame, ["dataset", "category", "variables"])),
    })


def load_source_records_empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in RECORD_COLUMNS})
    return frame.astype({"row_number": "int64", "num_variables": "int64"})


class CleanDocumentsConfig(Config):
    min_chars: int = 100
    min_words: int = 15
    min_lid_score: float = Field(default=0.5, ge=0, le=1)
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1, description="MinHash Jaccard estimate")
    max_tokens: int = Field(default=512, ge=16, description="Chunk budget, cut at paragraph/sentence boundaries")
    remove_boilerplate: bool = True
    remove_furniture: bool = Field(
        default=True, description="Drop BBC service labels and lines/prefixes recurring across a source's documents"
    )
    furniture_min_docs: int = Field(default=10, ge=2, description="A recurring line is in at least this many documents")
    furniture_min_share: float = Field(
        default=0.05, gt=0, le=1, description="... and in at least this share of the source's documents"
    )
    furniture_max_prefix_words: int = Field(default=6, ge=1, description="Words before the comma/colon of a prefix")
    workers: int = Field(default=0, ge=0, description="Processes for per-document work (0: one per CPU)")
    check_min_documents: int = Field(default=5, ge=0, description="Asset check: fewest kept documents")
    check_min_lid_pass_rate: float = Field(default=0.5, ge=0, le=1, description="Asset check")
    check_max_duplicate_rate: float = Field(default=0.5, ge=0, le=1, description="Asset check")


CLEAN_CHECKS = ("min_documents", "lid_pass_rate", "duplicate_rate")


@multi_asset(
    outs={
        "clean_documents": AssetOut(group_name="corpus", dagster_type=CleanDocumentsOutput, description=(
            "Normalised, language-checked, de-duplicated text, chunked under a token budget.")),
        "clean_document_rejects": AssetOut(group_name="corpus", dagster_type=RejectsOutput, description=(
            "Documents dropped by cleaning, as they were, with the reason.")),
    },
    # read in batches and written in batches: memory does not grow with the partition's text
    ins={"wikipedia_articles": AssetIn(metadata=ROW_SOURCE), "bbc_articles": AssetIn(metadata=ROW_SOURCE)},
    partitions_def=language_partitions,
    check_specs=[AssetCheckSpec(name, asset="clean_documents") for name in CLEAN_CHECKS],
)
def clean_documents(
    context: AssetExecutionContext,
    config: CleanDocumentsConfig,
    io_manager: ResourceParam[PartitionedParquetIOManager],
    wikipedia_articles: ParquetSource,
    bbc_articles: ParquetSource,
):
    lang = partition_language(context.partition_key)
    source = ParquetSource([*wikipedia_articles.paths, *bbc_articles.paths])
    schemas = {"clean_documents": schema_with(source.schema, CLEAN_ARROW_COLUMNS),
               "clean_document_rejects": schema_with(source.schema, REJECT_ARROW_COLUMNS)}  # fmt: skip
    with staged_partitions(io_manager, context.partition_key, schemas) as sinks:
        clean_sink, rejects_sink = sinks["clean_documents"], sinks["clean_document_rejects"]
        summary = clean_corpus_stream(source, lang, CleaningConfig(
            min_chars=config.min_chars, min_words=config.min_words, min_lid_score=config.min_lid_score,
            near_duplicate_threshold=config.near_duplicate_threshold, max_tokens=config.max_tokens,
            remove_boilerplate=config.remove_boilerplate, remove_furniture=config.remove_furniture,
            furniture_min_docs=config.furniture_min_docs, furniture_min_share=config.furniture_min_share,
            furniture_max_prefix_words=config.furniture_max_prefix_words, workers=config.workers,
        ), clean_sink, rejects_sink)
        clean_file, rejects_file = clean_sink.staged_file(), rejects_sink.staged_file()
    stats = summary.stats
    yield Output(clean_file, output_name="clean_documents", metadata={
        "documents_in": source.num_rows,
        "documents_kept": stats["documents_kept"],
        "chunks": clean_file.rows,
        "tokens": stats["tokens_total"],
        "lid_method": summary.lid_method,
        "furniture_lines_removed": stats["furniture_lines_removed"],
        "furniture_lines_by_kind": MetadataValue.json(stats["furniture_lines_by_kind"]),
        "stats": MetadataValue.json(stats),
        "preview": MetadataValue.md(markdown_preview(summary.preview, ["source", "title", "n_tokens", "lid_score",
                                                                       "text"])),
        "token_histogram": MetadataValue.md(histogram_markdown(
            pd.Series(summary.n_tokens, dtype="int64"), [0, 32, 64, 128, 256, 512, 1024], "tokens per chunk")),
        **drop_metadata(summary.drop_counts),
    })
    yield Output(rejects_file, output_name="clean_document_rejects",
                 metadata={"rejects": rejects_file.rows, **drop_metadata(summary.drop_counts)})
    documents_in, kept = source.num_rows, int(stats.get("documents_kept", 0))
    outcomes = {
        "min_documents": min_documents(kept, config.check_min_documents),
        "lid_pass_rate": lid_pass_rate(summary.drop_counts, documents_in, config.check_min_lid_pass_rate),
        "duplicate_rate": duplicate_rate(summary.drop_counts, documents_in, config.check_max_duplicate_rate),
    }
    for name, outcome in outcomes.items():
        yield AssetCheckResult(
            check_name=name, asset_key="clean_documents", passed=outcome.passed,
            severity=AssetCheckSeverity.WARN, description=outcome.description,
            metadata={"value": outcome.value, "lid_method": summary.lid_method},
        )
