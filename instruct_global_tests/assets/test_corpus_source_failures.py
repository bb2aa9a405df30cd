"""A live source that cannot be read fails its step and leaves the stored partition as it was;
a source that answers but has nothing succeeds empty. Against the local corpus server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize

from instruct_global.assets.corpus import bbc_articles, wikipedia_articles
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global_tests.assets.test_corpus_assets import FAST_HTTP
from instruct_global_tests.fixtures.corpus_server import BBC_ARTICLES, CorpusServer


@pytest.fixture
def server() -> Iterator[CorpusServer]:
    with CorpusServer() as srv:
        yield srv


def _materialize(asset, partition: str, data_dir: Path, config: dict):
    return materialize(
        [asset], partition_key=partition, raise_on_error=False,
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(data_dir)), "http": FAST_HTTP},
        run_config={"ops": {asset.key.path[-1]: {"config": config}}},
    )


def _failure_text(result) -> str:
    return str(next(e for e in result.all_events if e.is_failure).event_specific_data)


def _stopped_server_url() -> str:
    with CorpusServer() as gone:
        url = gone.base_url
    return url  # nothing listens there any more: every connection is refused


def test_bbc_unreachable_fails_and_keeps_the_stored_partition(server: CorpusServer, tmp_path: Path) -> None:
    first = _materialize(bbc_articles, "yor", tmp_path, {"base_url": server.base_url})
    assert first.success
    stored = tmp_path / "bbc_articles" / "yor.parquet"
    before = stored.read_bytes()
    assert len(pd.read_parquet(stored)) == len(BBC_ARTICLES["yoruba"])

    result = _materialize(bbc_articles, "yor", tmp_path, {"base_url": _stopped_server_url()})
    assert not result.success
    assert stored.read_bytes() == before  # the IO manager never ran
    assert list(stored.parent.iterdir()) == [stored]  # and nothing staged was left behind
    message = _failure_text(result)
    assert "nothing was read because requests failed" in message
    assert "robots_unreachable" in message and "requests failed (" in message


def test_bbc_every_article_failing_is_a_failure_not_an_empty_success(
    server: CorpusServer, tmp_path: Path
) -> None:
    for article in BBC_ARTICLES["yoruba"]:
        server.inject(f"/yoruba/articles/{article.article_id}", times=1000, status=503)
    result = _materialize(bbc_articles, "yor", tmp_path, {"base_url": server.base_url})
    assert not result.success
    assert not (tmp_path / "bbc_articles" / "yor.parquet").exists()
    message = _failure_text(result)
    # three listed articles plus one missing page (404): all four article fetches failed
    assert "all 4 article pages failed to fetch" in message
    assert "http_503: 3" in message and "http_404: 1" in message


def test_bbc_service_without_articles_succeeds_empty(server: CorpusServer, tmp_path: Path) -> None:
    result = _materialize(bbc_articles, "ibo", tmp_path, {"base_url": server.base_url})
    assert result.success
    frame = pd.read_parquet(tmp_path / "bbc_articles" / "ibo.parquet")
    assert frame.empty and "doc_id" in frame.columns
    meta = result.asset_materializations_for_node("bbc_articles")[0].metadata
    stats = meta["fetch_stats"].value
    assert stats["responses_ok"] >= 1 and stats["request_failures"] == {}


def test_wikipedia_api_failing_keeps_the_stored_partition(server: CorpusServer, tmp_path: Path) -> None:
    config = {"api_url": server.api_url_template, "max_articles": 3}
    assert _materialize(wikipedia_articles, "yor", tmp_path, config).success
    stored = tmp_path / "wikipedia_articles" / "yor.parquet"
    before = stored.read_bytes()

    server.inject("/yo/w/api.php", times=1000, status=500)
    result = _materialize(wikipedia_articles, "yor", tmp_path, config)
    assert not result.success
    assert stored.read_bytes() == before
    message = _failure_text(result)
    assert "nothing was read because requests failed" in message
    assert "http_500: 3" in message  # FAST_HTTP: one attempt and two retries

    unreachable = _materialize(
        wikipedia_articles, "yor", tmp_path, {"api_url": _stopped_server_url() + "/{wiki}/w/api.php"}
    )
    assert not unreachable.success and stored.read_bytes() == before
    assert list(stored.parent.iterdir()) == [stored]  # nothing staged left behind
    assert "connection_error" in _failure_text(unreachable)


def test_wikipedia_without_articles_succeeds_empty(server: CorpusServer, tmp_path: Path) -> None:
    result = _materialize(wikipedia_articles, "ibo", tmp_path, {"api_url": server.api_url_template})
    assert result.success
    assert pd.read_parquet(tmp_path / "wikipedia_articles" / "ibo.parquet").empty


def test_furniture_counts_reach_the_metadata(tmp_path: Path) -> None:
    from instruct_global.assets.corpus import clean_documents
    from instruct_global_tests.conftest import REPO_ROOT
    from instruct_global_tests.fixtures.bbc_furniture_pages import build_pages

    pages_dir = tmp_path / "pages" / "hausa"
    pages_dir.mkdir(parents=True)
    for page in build_pages("hausa", 12):
        (pages_dir / f"{page.article_id}.html").write_text(page.html, encoding="utf-8")
    samples = REPO_ROOT / "data" / "samples"
    config = {
        "wikipedia_articles": {"config": {"source": "dump",
                                          "dump_path": str(samples / "wikipedia" / "{wiki}wiki-sample-pages-articles.xml.bz2")}},
        "bbc_articles": {"config": {"source": "saved", "saved_pages_dir": str(tmp_path / "pages" / "{service}")}},
        "clean_documents": {"config": {"max_tokens": 256, "furniture_min_docs": 5}},
    }
    result = materialize(
        [wikipedia_articles, bbc_articles, clean_documents], partition_key="hau", run_config={"ops": config},
        resources={"io_manager": PartitionedParquetIOManager(data_dir=str(tmp_path / "out")), "http": FAST_HTTP},
    )
    assert result.success
    bbc_meta = result.asset_materializations_for_node("bbc_articles")[0].metadata
    removed = bbc_meta["furniture_removed"].value
    assert removed["figure"] >= 12 and removed["timestamp"] == 12 and bbc_meta["furniture_removed_total"].value > 24
    clean_meta = result.asset_materializations_for_node("clean_documents")[0].metadata
    assert set(clean_meta["furniture_lines_by_kind"].value) == {"service_label", "recurring_line", "recurring_prefix"}
    clean = pd.read_parquet(tmp_path / "out" / "clean_documents" / "hau.parquet")
    bbc_text = "\n".join(clean.loc[clean["source"] == "bbc", "text"])
    assert bbc_text and "Asalin hoton" not in bbc_text and "Marubuci" not in bbc_text
