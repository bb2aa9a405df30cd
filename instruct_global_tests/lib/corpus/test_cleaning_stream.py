"""clean_corpus_stream (Parquet in, Parquet out, a batch at a time) decides exactly as clean_corpus."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from instruct_global.languages import LANGUAGES
from instruct_global.lib.common.frame_stream import FrameSink, ParquetSink, ParquetSource, schema_with
from instruct_global.lib.corpus.cleaning import (
    CLEAN_ARROW_COLUMNS,
    REJECT_ARROW_COLUMNS,
    CleaningConfig,
    clean_corpus,
    clean_corpus_stream,
)
from instruct_global_tests.lib.corpus.test_cleaning import YORUBA_OTHER, YORUBA_PARAGRAPH, _doc

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "data" / "samples"
YOR = LANGUAGES["yor"]
COMPARED = ["doc_id", "chunk_id", "chunk_index", "n_chunks", "n_tokens", "lid_lang", "text", "title", "source"]


def _partitions(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """The Yoruba sample documents as two partitions with their own extra columns, as the assets write them."""
    docs = pd.read_json(SAMPLES_DIR / "documents_yor.jsonl", lines=True, dtype=False, convert_dates=False)
    hostile = pd.DataFrame([_doc("sample-001-again", YORUBA_PARAGRAPH), _doc("yor-sample-001", YORUBA_OTHER),
                            _doc(None, YORUBA_OTHER), _doc("empty", None)])  # type: ignore[arg-type]  # fmt: skip
    wiki = pd.concat([docs.iloc[:10], hostile], ignore_index=True).assign(source="wikipedia")
    wiki["page_id"] = range(len(wiki))
    bbc = docs.iloc[10:].assign(source="bbc", published="2025-05-01")
    wiki_path, bbc_path = tmp_path / "wikipedia_articles.parquet", tmp_path / "bbc_articles.parquet"
    wiki.to_parquet(wiki_path, index=False)
    bbc.to_parquet(bbc_path, index=False)
    return wiki_path, bbc_path, pd.concat([wiki, bbc], ignore_index=True, sort=False)


@pytest.mark.parametrize("batch_rows", [1, 3, 1024])
def test_streamed_cleaning_writes_what_cleaning_in_memory_returns(tmp_path: Path, batch_rows: int) -> None:
    wiki, bbc, docs = _partitions(tmp_path)
    config = CleaningConfig(max_tokens=128)
    expected = clean_corpus(docs, YOR, config)

    source = ParquetSource([wiki, bbc])
    clean_sink = ParquetSink(tmp_path / "clean.parquet", schema_with(source.schema, CLEAN_ARROW_COLUMNS))
    rejects_sink = ParquetSink(tmp_path / "rejects.parquet", schema_with(source.schema, REJECT_ARROW_COLUMNS))
    summary = clean_corpus_stream(source, YOR, config, clean_sink, rejects_sink, batch_rows=batch_rows)
    clean, rejects = pd.read_parquet(clean_sink.commit()), pd.read_parquet(rejects_sink.commit())

    assert len(clean) == len(expected.clean) > 10
    pd.testing.assert_frame_equal(clean[COMPARED], expected.clean[COMPARED], check_dtype=False)
    assert clean["lid_score"].tolist() == pytest.approx(expected.clean["lid_score"].tolist())
    # the columns only one partition has survive, null for the other's rows
    assert clean["page_id"].notna().sum() == expected.clean["page_id"].notna().sum() > 0
    assert set(clean.loc[clean["source"] == "bbc", "published"]) == {"2025-05-01"}
    # every reject, in input order, as it was, with its reason
    assert rejects["reason"].tolist() == expected.rejects["reason"].tolist()
    assert rejects["doc_id"].tolist() == expected.rejects["doc_id"].tolist()
    assert rejects["reason_detail"].tolist() == expected.rejects["reason_detail"].tolist()
    assert {"invalid_doc_id", "exact_duplicate", "near_duplicate", "too_short"} <= set(rejects["reason"])
    assert summary.drop_counts == expected.drop_counts
    assert summary.stats == expected.stats
    assert summary.n_tokens == clean["n_tokens"].tolist()
    assert summary.preview["chunk_id"].tolist() == clean["chunk_id"].head(10).tolist()


def test_streamed_cleaning_in_a_process_pool_decides_the_same(tmp_path: Path) -> None:
    wiki, bbc, docs = _partitions(tmp_path)
    one = clean_corpus(docs, YOR, CleaningConfig(max_tokens=128))
    pooled_clean, pooled_rejects = FrameSink(pd.DataFrame()), FrameSink(pd.DataFrame())
    clean_corpus_stream(ParquetSource([wiki, bbc]), YOR, CleaningConfig(max_tokens=128, workers=2, batch_size=3),
                        pooled_clean, pooled_rejects, batch_rows=4)  # fmt: skip
    assert pooled_clean.frame()["chunk_id"].tolist() == one.clean["chunk_id"].tolist()
    assert pooled_rejects.frame()["reason"].tolist() == one.rejects["reason"].tolist()


def test_a_partition_without_the_contract_columns_is_named(tmp_path: Path) -> None:
    wiki, bbc, _ = _partitions(tmp_path)
    pd.read_parquet(bbc).drop(columns=["license"]).to_parquet(bbc, index=False)
    with pytest.raises(ValueError, match=rf"{bbc.name} lacks required columns: license"):
        clean_corpus_stream(ParquetSource([wiki, bbc]), YOR, None, FrameSink(pd.DataFrame()), FrameSink(pd.DataFrame()))
