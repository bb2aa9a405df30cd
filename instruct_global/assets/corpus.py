"""Corpus assets: Wikipedia and BBC News in the partition's language, and the user's datasets."""
# No "from __future__ import annotations": Dagster reads these annotations at definition time.


from pathlib import Path
from typing import Literal

import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset
from pydantic import Field

from instruct_global.frames import DocumentsFrame
from instruct_global.lib.bbc import BbcScraper
from instruct_global.lib.bbc_saved import iter_saved_articles
from instruct_global.lib.documents import documents_frame
from instruct_global.lib.report import LENGTH_BINS_CHARS, markdown_histogram, markdown_preview
from instruct_global.lib.wikipedia import DumpStats, WikipediaApiClient, iter_dump_articles
from instruct_global.partitions import language_partitions, partition_language
from instruct_global.resources.http import HttpFetcherResource


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


class BbcConfig(Config):
    source: Literal["live", "saved"] = Field(
        default="live", description="live: sitemaps and pages of bbc.com; saved: .html files in saved_pages_dir"
    )
    base_url: str = "https://www.bbc.com"
    max_articles: int = Field(default=200, ge=0)
    saved_pages_dir: str = Field(default="", description="Saved mode: folder of pages; {service} is replaced")


def _document_metadata(frame: pd.DataFrame, stats: dict[str, object]) -> dict[str, object]:
    lengths = frame["text"].str.len() if not frame.empty else pd.Series(dtype="int64")
    return {
        "documents": len(frame),
        "characters": int(lengths.sum()),
        "preview": MetadataValue.md(markdown_preview(frame, ["title", "url", "text"])),
        "length_histogram": MetadataValue.md(markdown_histogram(lengths, LENGTH_BINS_CHARS, "characters")),
        "fetch_stats": MetadataValue.json(stats),
    }


@asset(
    group_name="corpus",
    partitions_def=language_partitions,
    dagster_type=DocumentsFrame,
    pool="wikipedia",
    description="Articles of the language's Wikipedia: the MediaWiki API for small pulls, a dump file for all.",
)
def wikipedia_articles(
    context: AssetExecutionContext, config: WikipediaConfig, http: HttpFetcherResource
) -> Output[pd.DataFrame]:
    lang = partition_language(context.partition_key)
    wiki = lang.require("wikipedia_code", "Wikipedia")
    if config.source == "dump":
        if not config.dump_path:
            raise ValueError("wikipedia_articles: source is 'dump' but dump_path is empty")
        path = Path(config.dump_path.format(wiki=wiki))
        dump_stats = DumpStats()
        rows = list(iter_dump_articles(path, lang.key, config.dump_max_articles, wiki=wiki, stats=dump_stats))
        stats: dict[str, object] = {"mode": "dump", "dump": str(path), **dump_stats.as_dict()}
    else:
        with http.get_fetcher() as fetcher:
            client = WikipediaApiClient(fetcher, wiki, lang.key, api_url=config.api_url)
            rows = list(client.iter_articles(config.max_articles))
            stats = {"mode": "api", **client.stats.as_dict(), **fetcher.stats.as_dict()}
    frame = documents_frame(rows, extra_columns=("page_id", "wiki"))
    context.log.info(f"{lang.name}: {len(frame)} Wikipedia articles ({stats['mode']})")
    return Output(frame, metadata=_document_metadata(frame, stats))


@asset(
    group_name="corpus",
    partitions_def=language_partitions,
    dagster_type=DocumentsFrame,
    pool="bbc",
    description="BBC News articles of the language's service, main text only.",
)
def bbc_articles(context: AssetExecutionContext, config: BbcConfig, http: HttpFetcherResource) -> Output[pd.DataFrame]:
    lang = partition_language(context.partition_key)
    if lang.bbc_service is None:
        # Not an error: the corpus simply has no BBC part for this language (Zulu, for one).
        context.log.warning(f"{lang.name} ({lang.key}) has no BBC News service; bbc_articles is empty")
        frame = documents_frame([], extra_columns=("published", "service"))
        return Output(frame, metadata=_document_metadata(frame, {"mode": "none", "reason": "no BBC service"}))
    service = lang.bbc_service
    if config.source == "saved":
        folder = Path(config.saved_pages_dir.format(service=service))
        rows = list(iter_saved_articles(folder, service, lang.key, config.max_articles))
        stats: dict[str, object] = {"mode": "saved", "folder": str(folder), "pages": len(rows)}
    else:
        with http.get_fetcher() as fetcher:
            scraper = BbcScraper(fetcher, service, lang.key, base_url=config.base_url)
            rows = list(scraper.iter_articles(config.max_articles))
            stats = {"mode": "live", **scraper.stats.as_dict(), **fetcher.stats.as_dict()}
    frame = documents_frame(rows, extra_columns=("published", "service"))
    context.log.info(f"{lang.name}: {len(frame)} BBC articles ({stats['mode']})")
    return Output(frame, metadata=_document_metadata(frame, stats))
