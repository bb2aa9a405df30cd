"""The corpus assets materialised per partition against the local MediaWiki/BBC server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize

from instruct_global.assets.corpus import bbc_articles, wikipedia_articles
from instruct_global.resources.http import HttpFetcherResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.fixtures.corpus_server import (
    BOILERPLATE,
    CorpusServer,
    dump_article_count,
    write_wiki_dump,
)

FAST_HTTP = HttpFetcherResource(
    contact="tests@example.org", min_interval_seconds=0.0, timeout_seconds=2.0, max_retries=2,
    backoff_base_seconds=0.01, max_backoff_seconds=0.05, max_retry_after_seconds=0.05,
)


@pytest.fixture
def server() -> Iterator[CorpusServer]:
    with CorpusServer() as srv:
        yield srv


def _run(asset, partition: str, data_dir: Path, config: dict) -> pd.DataFrame:
    result = materialize(
        [asset],
        partition_key=partition,
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(data_dir)), "http": FAST_HTTP},
        run_config={"ops": {asset.key.path[-1]: {"config": config}}},
    )
    assert result.success
    return pd.read_parquet(data_dir / asset.key.path[-1] / f"{partition}.parquet")


def test_wikipedia_api_mode_pulls_articles_of_the_partition(server: CorpusServer, tmp_path: Path) -> None:
    server.api_error("yo", "maxlag", times=1, retry_after="0")
    frame = _run(wikipedia_articles, "yor", tmp_path, {"api_url": server.api_url_template, "max_articles": 4})
    assert len(frame) == 4
    assert set(frame["lang"]) == {"yor"} and set(frame["source"]) == {"wikipedia"}
    assert frame["doc_id"].is_unique and (frame["text"].str.len() > 0).all()
    assert set(frame["license"]) == {"CC BY-SA 4.0"}


def test_wikipedia_language_without_articles_gives_an_empty_frame(server: CorpusServer, tmp_path: Path) -> None:
    frame = _run(wikipedia_articles, "ibo", tmp_path, {"api_url": server.api_url_template})
    assert frame.empty and "doc_id" in frame.columns


def test_wikipedia_dump_mode_streams_the_file(tmp_path: Path) -> None:
    dump = tmp_path / "yowiki-latest-pages-articles.xml.bz2"
    write_wiki_dump(dump, "yo")
    frame = _run(wikipedia_articles, "yor", tmp_path / "out",
                 {"source": "dump", "dump_path": str(tmp_path / "{wiki}wiki-latest-pages-articles.xml.bz2")})
    assert len(frame) == dump_article_count("yo")


def test_wikipedia_truncated_dump_fails_the_step(tmp_path: Path) -> None:
    dump = tmp_path / "yowiki.xml.bz2"
    write_wiki_dump(dump, "yo", truncate="bz2")
    result = materialize(
        [wikipedia_articles], partition_key="yor", raise_on_error=False,
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path)), "http": FAST_HTTP},
        run_config={"ops": {"wikipedia_articles": {"config": {"source": "dump", "dump_path": str(dump)}}}},
    )
    assert not result.success
    assert not (tmp_path / "wikipedia_articles" / "yor.parquet").exists()


def test_bbc_live_mode_extracts_main_text_only(server: CorpusServer, tmp_path: Path) -> None:
    frame = _run(bbc_articles, "yor", tmp_path, {"base_url": server.base_url})
    assert len(frame) > 0 and set(frame["source"]) == {"bbc"}
    joined = "\n".join(frame["text"])
    for boilerplate in BOILERPLATE:
        assert boilerplate not in joined


def test_bbc_language_without_service_is_empty_not_an_error(tmp_path: Path) -> None:
    frame = _run(bbc_articles, "zul", tmp_path, {})
    assert frame.empty and list(frame.columns)[:8] == [
        "doc_id", "lang", "source", "url", "title", "text", "license", "retrieved_at",
    ]


def test_wrong_frame_fails_at_the_boundary(tmp_path: Path) -> None:
    from dagster import asset

    from instruct_global.frames import DocumentsFrame
    from instruct_global.partitions import language_partitions

    @asset(partitions_def=language_partitions, dagster_type=DocumentsFrame)
    def broken_documents() -> pd.DataFrame:
        return pd.DataFrame({"doc_id": ["a"], "lang": ["yor"]})

    result = materialize([broken_documents], partition_key="yor", raise_on_error=False,
                         resources={"io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path))})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    assert "source" in str(failure.event_specific_data)
    assert not (tmp_path / "broken_documents").exists()


@pytest.mark.parametrize(("lang", "lid_method"), [("hau", "langid"), ("yor", "lingua")])
def test_clean_documents_counts_every_drop_and_runs_its_checks(tmp_path: Path, lang: str, lid_method: str) -> None:
    from instruct_global.assets.corpus import clean_documents
    from instruct_global.lib.corpus.normalise import is_boilerplate_line, looks_bad
    from instruct_global_tests.conftest import REPO_ROOT

    samples = REPO_ROOT / "data" / "samples"
    config = {
        "wikipedia_articles": {"config": {"source": "dump",
                                          "dump_path": str(samples / "wikipedia" / "{wiki}wiki-sample-pages-articles.xml.bz2")}},
        "bbc_articles": {"config": {"source": "saved", "saved_pages_dir": str(samples / "bbc" / "{service}")}},
        "clean_documents": {"config": {"max_tokens": 128}},
    }
    result = materialize(
        [wikipedia_articles, bbc_articles, clean_documents], partition_key=lang, run_config={"ops": config},
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path)), "http": FAST_HTTP},
    )
    assert result.success
    clean = pd.read_parquet(tmp_path / "clean_documents" / f"{lang}.parquet")
    rejects = pd.read_parquet(tmp_path / "clean_document_rejects" / f"{lang}.parquet")
    assert (clean["n_tokens"] <= 128).all() and clean["chunk_id"].is_unique
    # 14 documents kept; only the long history article (sample-015, in the dump) is split, into 4
    # chunks: the saved BBC page of sample-012 leaves no chunk of page furniture behind, and the
    # mojibake of sample-008 is repaired whole, not in pieces.
    n_chunks = clean.groupby("doc_id").size()
    assert len(n_chunks) == 14 and sorted(n_chunks)[-2:] == [1, 4] and len(clean) == 17
    page_012 = clean.loc[clean["url"].str.endswith(f"/c{lang}sample012"), "text"]
    assert len(page_012) == 1 and not any(is_boilerplate_line(line) for line in page_012.item().splitlines())
    assert not any(looks_bad(text) for text in clean["text"])
    assert sorted(rejects["reason"]) == sorted(
        ["exact_duplicate", "near_duplicate", "wrong_language", "too_short", "empty_after_cleaning"])
    meta = result.asset_materializations_for_node("clean_documents")[0].metadata
    assert meta["dropped_total"].value == len(rejects) == 5
    assert meta["lid_method"].value == lid_method
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"min_documents": True, "lid_pass_rate": True, "duplicate_rate": True}


def _sample_partitions(data_dir: Path, lang: str) -> None:
    from instruct_global_tests.conftest import REPO_ROOT

    samples = REPO_ROOT / "data" / "samples"
    config = {
        "wikipedia_articles": {"config": {"source": "dump",
                                          "dump_path": str(samples / "wikipedia" / "{wiki}wiki-sample-pages-articles.xml.bz2")}},
        "bbc_articles": {"config": {"source": "saved", "saved_pages_dir": str(samples / "bbc" / "{service}")}},
    }  # fmt: skip
    assert materialize([wikipedia_articles, bbc_articles], partition_key=lang, run_config={"ops": config},
                       resources={"io_manager": PartitionedParquetIOManager(data_dir=str(data_dir)),
                                  "http": FAST_HTTP}).success  # fmt: skip


def _clean_only(data_dir: Path, lang: str):
    from instruct_global.assets.corpus import clean_documents

    return materialize(
        [wikipedia_articles.to_source_asset(), bbc_articles.to_source_asset(), clean_documents], partition_key=lang,
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(data_dir))}, raise_on_error=False,
        selection=list(clean_documents.keys),
    )  # fmt: skip


def test_clean_documents_streams_its_partition_and_leaves_no_staged_files(tmp_path: Path) -> None:
    _sample_partitions(tmp_path, "yor")
    result = _clean_only(tmp_path, "yor")
    assert result.success
    for name in ("clean_documents", "clean_document_rejects"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["yor.parquet"]
    clean = pd.read_parquet(tmp_path / "clean_documents" / "yor.parquet")
    meta = result.asset_materializations_for_node("clean_documents")[0].metadata
    assert meta["row_count"].value == meta["chunks"].value == len(clean) > 10
    assert str(clean["title"].iloc[0]) in meta["preview"].value


def test_a_failed_clean_leaves_the_stored_partition_as_it_was(tmp_path: Path) -> None:
    _sample_partitions(tmp_path, "yor")
    assert _clean_only(tmp_path, "yor").success
    stored = (tmp_path / "clean_documents" / "yor.parquet").read_bytes()
    bbc = tmp_path / "bbc_articles" / "yor.parquet"
    pd.read_parquet(bbc).drop(columns=["license"]).to_parquet(bbc, index=False)
    result = _clean_only(tmp_path, "yor")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    assert f"{bbc} lacks required columns: license" in str(failure.event_specific_data)
    assert (tmp_path / "clean_documents" / "yor.parquet").read_bytes() == stored
    for name in ("clean_documents", "clean_document_rejects"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["yor.parquet"]


def test_a_staged_file_breaking_the_contract_fails_the_type_check_with_its_rows(tmp_path: Path) -> None:
    from dagster import Output, asset

    from instruct_global.frames import CleanDocumentsOutput
    from instruct_global.lib.common.frame_stream import ParquetSink, schema_with
    from instruct_global.lib.corpus.cleaning import CLEAN_ARROW_COLUMNS
    from instruct_global.partitions import language_partitions

    n = 5000  # past the first checked batch of 4096 rows
    good = pd.DataFrame({"doc_id": "d", "lang": "yor", "source": "wikipedia", "url": "u", "title": "t", "text": "x",
                         "license": "CC BY-SA 4.0", "retrieved_at": "2025", "chunk_id": [f"c{i}" for i in range(n)],
                         "chunk_index": range(n), "n_chunks": n, "n_tokens": 5, "lid_lang": "yor", "lid_score": 0.9})  # fmt: skip
    bad = good.tail(1).assign(chunk_id="last", n_tokens=0)  # a chunk of no tokens breaks the contract
    import pyarrow as pa

    schema = schema_with(pa.Schema.from_pandas(good.drop(columns=list(CLEAN_ARROW_COLUMNS)), preserve_index=False),
                         CLEAN_ARROW_COLUMNS)  # fmt: skip
    target = tmp_path / "streamed_chunks" / "yor.parquet"

    @asset(partitions_def=language_partitions, dagster_type=CleanDocumentsOutput)
    def streamed_chunks():
        sink = ParquetSink(target, schema)
        sink.write(good)
        sink.write(bad)
        return Output(sink.staged_file())

    result = materialize([streamed_chunks], partition_key="yor", raise_on_error=False,
                         resources={"io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path))})  # fmt: skip
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    assert "rows 4096-5000 of the staged yor.parquet" in str(failure.event_specific_data)
    assert not target.exists() and list(target.parent.iterdir()) == []  # the staged file is gone too
