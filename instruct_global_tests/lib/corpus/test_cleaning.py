from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import ftfy
import pandas as pd
import pytest

from instruct_global.languages import LANGUAGES
from instruct_global.lib.corpus.chunking import (
    approx_token_count,
    chunk_text,
    hard_cut,
    regex_split_sentences,
    split_sentences,
)
from instruct_global.lib.corpus.cleaning import (
    CLEAN_EXTRA_COLUMNS,
    DOCUMENT_COLUMNS,
    DROP_REASONS,
    REJECT_EXTRA_COLUMNS,
    CleaningConfig,
    chunk_id,
    clean_corpus,
    length_filter,
)
from instruct_global.lib.corpus.dedupe import ExactDeduplicator, NearDeduplicator, word_shingles
from instruct_global.lib.corpus.normalise import is_boilerplate_line, normalise_text, strip_markup

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "data" / "samples"
YOR = LANGUAGES["yor"]
HAU = LANGUAGES["hau"]

YORUBA_PARAGRAPH = (
    "Àkókò òjò ti bẹ̀rẹ̀ ní ilẹ̀ Yorùbá, àwọn àgbẹ̀ sì ti ń múra sílẹ̀ fún iṣẹ́ oko. Ní oṣù Ẹrẹ́nà, "
    "ọ̀pọ̀ àgbẹ̀ máa ń ro ilẹ̀, wọ́n sì máa ń gbin iṣu, àgbàdo àti ẹ̀gẹ́. Àwọn onímọ̀ nípa ojú ọjọ́ "
    "kìlọ̀ pé òjò lè pọ̀ jù ní àwọn agbègbè kan, èyí tó lè fa ìkún omi."
)
YORUBA_OTHER = (
    "Ìlù gángan, tí àwọn èèyàn ń pè ní ìlù tó ń sọ̀rọ̀, jẹ́ ọ̀kan lára àwọn ohun èlò orin tó ṣe pàtàkì "
    "jùlọ ní ilẹ̀ Yorùbá. Onílù lè fi ìlù náà pe orúkọ èèyàn, kí ó sì sọ òwe. Ìdí ni pé èdè Yorùbá jẹ́ "
    "èdè olóhùn, ohùn ìlù sì máa ń lọ sókè tàbí sílẹ̀ bí ohùn ẹni tó ń sọ̀rọ̀."
)


def _doc(doc_id: str, text: object, **extra: object) -> dict[str, object]:
    return {
        "doc_id": doc_id,
        "lang": "yor",
        "source": "test",
        "url": f"https://example.org/{doc_id}",
        "title": doc_id,
        "text": text,
        "license": "CC BY 4.0",
        "retrieved_at": "2025-01-15T00:00:00Z",
        **extra,
    }


# --- normalise ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (YORUBA_PARAGRAPH.encode("utf-8").decode("sloppy-windows-1252"), YORUBA_PARAGRAPH),  # mojibake
        (unicodedata.normalize("NFD", YORUBA_PARAGRAPH), unicodedata.normalize("NFC", YORUBA_PARAGRAPH)),
        (
            "<p>Ọjà <b>Ọba</b></p><script>alert(1)</script><p>ní Ìbàdàn &amp; Ọ̀yọ́</p>",
            "Ọjà Ọba\n\nní Ìbàdàn & Ọ̀yọ́",
        ),
        ("a\u200b b\u00a0\u00a0c\t\td  \r\n\r\n\r\n\r\ne\x07", "a b c d\n\ne"),
        ("He said “hi” to ’yan kasuwa", "He said “hi” to ’yan kasuwa"),  # quotes stay curly
        (None, ""),
        (float("nan"), ""),
        (12345, "12345"),
    ],
)
def test_normalise_text(raw: object, expected: str) -> None:
    assert normalise_text(raw, drop_boilerplate=False).text == expected


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("'''Èkó''' jẹ́ [[ìlú]] ní [[Nàìjíríà|orílẹ̀-èdè Nàìjíríà]].", "Èkó jẹ́ ìlú ní orílẹ̀-èdè Nàìjíríà."),
        ("A{{cite web|url=x|title={{nested}}}} B<ref name=a>note</ref> C<ref name=b/>", "A B C"),
        ("[[Fáìlì:Eko.jpg|thumb|Àwòrán [[Èkó]]]]Ìlú", "Ìlú"),
        ("[[Ẹ̀ka:Àwọn ìlú]]\n== Ìtàn ==\n* Ohun kan[1]", "Ìtàn\nOhun kan"),
        ("[https://example.org Ojú ewé] àti [https://example.org]", "Ojú ewé àti"),
        ("{| class=wikitable\n|-\n| a || b\n|}\nÈkó", "Èkó"),
        ("<!-- comment -->Ìlú<style>p{}</style>", "Ìlú"),
    ],
)
def test_strip_markup(markup: str, expected: str) -> None:
    assert normalise_text(strip_markup(markup), drop_boilerplate=False).text == expected


@pytest.mark.parametrize(
    "line",
    [
        "Share this",
        "Share on WhatsApp",
        "Follow us on Facebook and Twitter",
        "Related Topics",
        "Labarai masu alaƙa",
        "Habari zinazohusiana",
        "ተዛማጅ ርዕሶች",
        "We use cookies to give you the best experience. By continuing you agree to our cookie policy.",
        "© 2024 BBC. The BBC is not responsible for the content of external sites.",
        "Copyright 2023 Example News",
        "https://example.org/a/b/c?d=1",
        "Home | News | Sport | Video",
        "— — —",
        "2024",
    ],
)
def test_boilerplate_lines(line: str) -> None:
    assert is_boilerplate_line(line)


@pytest.mark.parametrize(
    "line",
    [
        YORUBA_PARAGRAPH,
        "Ìtàn Ilẹ̀ Ọba Ọ̀yọ́",  # a heading
        "Wanafunzi wanahitaji kusoma zaidi.",  # contains "soma zaidi" (read more), but not as words
        # a long sentence that mentions cookies is content, not a notice
        "The bakery sold cookies, bread and cakes to hundreds of customers every morning before the "
        "market opened, and the owner said that demand had doubled since the new road was built "
        "through the town centre last year, bringing traders from the surrounding villages.",
    ],
)
def test_content_lines_are_kept(line: str) -> None:
    assert not is_boilerplate_line(line)


def test_menu_runs_are_removed_but_a_single_heading_stays() -> None:
    text = f"Ìròyìn\nEré ìdárayá\nÌlera\nFídíò\n\nÌtàn Ọ̀yọ́\n{YORUBA_PARAGRAPH}\nShare this"
    result = normalise_text(text)
    assert result.text == f"Ìtàn Ọ̀yọ́\n{YORUBA_PARAGRAPH}"
    assert result.boilerplate_lines == 5


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "hostile",
    [
        "<ref>a " * 20_000,  # unclosed elements
        "<!-- a " * 20_000,
        "{|\n" * 20_000,  # unclosed wiki tables
        "[http://x " * 20_000,  # unclosed external links
        "{{" * 20_000 + "x" + "}}" * 20_000,  # deep template nesting
        "[[" * 20_000,
        "=" * 20_000 + "x",
        "a@" * 20_000,
        "a | " * 20_000,
    ],
    ids=["ref", "comment", "table", "extlink", "templates", "links", "heading", "at-signs", "menu"],
)
def test_hostile_markup_is_handled_in_linear_time(hostile: str) -> None:
    # Each of these took seconds to minutes with lazy or unbounded regex repeats.
    normalise_text(hostile)


# --- chunking ----------------------------------------------------------------------------


def test_approx_token_count_counts_words_with_tone_marks_as_one() -> None:
    assert approx_token_count("jẹ́ ọ̀pọ̀ èèyàn", factor=1.0) == 3
    assert approx_token_count("a, b.", factor=1.0) == 4
    assert approx_token_count("", factor=1.5) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ሰላም ነው። እንዴት ነህ፧ደህና ነኝ።", ["ሰላም ነው።", "እንዴት ነህ፧", "ደህና ነኝ።"]),
        (
            'Ó ní, "Ẹ kú iṣẹ́." Wọ́n dáhùn. Iye rẹ̀ jẹ́ 3.5 náírà!',
            ['Ó ní, "Ẹ kú iṣẹ́."', "Wọ́n dáhùn.", "Iye rẹ̀ jẹ́ 3.5 náírà!"],
        ),
        ("no terminator at all", ["no terminator at all"]),
        ("", []),
    ],
)
def test_regex_sentence_splitter(text: str, expected: list[str]) -> None:
    assert regex_split_sentences(text) == expected


def test_pysbd_is_used_where_it_has_rules() -> None:
    assert split_sentences("ሰላም ነው። አዎ።", LANGUAGES["amh"]) == ["ሰላም ነው።", "አዎ።"]
    assert split_sentences("Ẹ kú àárọ̀. Ṣé dáadáa ni?", YOR) == ["Ẹ kú àárọ̀.", "Ṣé dáadáa ni?"]


def _words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("budget", [8, 20, 40, 128, 512])
def test_chunks_fit_the_budget_and_lose_nothing(budget: int) -> None:
    text = "\n\n".join([YORUBA_PARAGRAPH, YORUBA_OTHER, "Kúkúrú.", YORUBA_PARAGRAPH + " " + YORUBA_OTHER])
    chunks = chunk_text(text, budget, lang=YOR)
    assert all(approx_token_count(c) <= budget for c in chunks)
    assert _words(" ".join(chunks)) == _words(text)


def test_paragraphs_that_fit_stay_whole_and_are_packed_together() -> None:
    text = f"{YORUBA_PARAGRAPH}\n\n{YORUBA_OTHER}"
    assert chunk_text(text, 10_000) == [text]
    budget = max(approx_token_count(YORUBA_PARAGRAPH), approx_token_count(YORUBA_OTHER)) + 5
    assert chunk_text(text, budget) == [YORUBA_PARAGRAPH, YORUBA_OTHER]


def test_sentences_split_before_any_hard_cut() -> None:
    sentences = regex_split_sentences(YORUBA_PARAGRAPH)
    budget = max(approx_token_count(s) for s in sentences)
    chunks = chunk_text(YORUBA_PARAGRAPH, budget)
    assert all(c in sentences or " " in c for c in chunks)
    assert all(any(c.endswith(end) for end in ".!?") for c in chunks)  # cut only at sentence ends


@pytest.mark.parametrize(
    "sentence",
    [
        "ọ̀rọ̀ " * 500,  # one sentence far over budget
        "x" * 5_000,  # one "word" over budget
        "a" * 3 + " " + "b" * 10_000 + " c",
    ],
)
def test_hard_cut_only_for_oversized_sentences(sentence: str) -> None:
    count = len  # a counter in characters makes the over-long word case real

    pieces = hard_cut(sentence.strip(), 100, count)
    assert all(0 < count(p) <= 100 for p in pieces)
    assert "".join(pieces).replace(" ", "") == sentence.replace(" ", "")
    assert all(count(c) <= 100 for c in chunk_text(sentence, 100, count))


def test_chunks_keep_the_documents_own_line_breaks() -> None:
    text = "Àkọlé\nÌpínrọ̀ kìíní.\n\nÌpínrọ̀ kejì."
    assert chunk_text(text, 1000) == [text]


@pytest.mark.timeout(20)
def test_huge_unpunctuated_text_is_cut_quickly() -> None:
    chunks = chunk_text("ọ̀rọ̀ " * 50_000, 512)
    assert all(approx_token_count(c) <= 512 for c in chunks)
    assert sum(len(c.split()) for c in chunks) == 50_000


def test_pluggable_counter_and_bad_budget() -> None:
    chunks = chunk_text(YORUBA_PARAGRAPH, 60, count=len)
    assert all(len(c) <= 60 for c in chunks)
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_text("a", 0)


# --- de-duplication ----------------------------------------------------------------------


def test_exact_duplicates_ignore_whitespace_only() -> None:
    dedupe = ExactDeduplicator()
    assert dedupe.check("a", YORUBA_PARAGRAPH) == (True, None)
    assert dedupe.duplicate_of("b", "  " + YORUBA_PARAGRAPH.replace(" ", "\n ")) == "a"
    assert dedupe.check("c", YORUBA_PARAGRAPH.upper()) == (True, None)


def test_near_duplicates_are_found_and_distinct_texts_kept() -> None:
    near = NearDeduplicator(threshold=0.8)
    long_text = " ".join([YORUBA_PARAGRAPH, YORUBA_OTHER] * 2)
    edited = long_text.replace("gángan", "dùndún", 1).replace("Onílù", "Àyàn", 1)
    assert near.check("a", long_text) == (True, None)
    assert near.check("b", YORUBA_OTHER) == (True, None)
    match = near.duplicate_of("c", edited)
    assert match is not None and match[0] == "a" and match[1] >= 0.8
    assert near.check("d", edited) == (False, "near_duplicate")


def test_near_duplicate_decisions_are_deterministic() -> None:
    a, b = NearDeduplicator(), NearDeduplicator()
    assert (a.minhash(YORUBA_PARAGRAPH).hashvalues == b.minhash(YORUBA_PARAGRAPH).hashvalues).all()


def test_word_shingles() -> None:
    assert word_shingles("a b c", 5) == {"a b c"}
    assert word_shingles("", 5) == set()
    assert len(word_shingles("A b c d e f", 5)) == 2


@pytest.mark.parametrize("threshold", [0.0, -1.0, 1.5])
def test_bad_near_duplicate_threshold(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        NearDeduplicator(threshold=threshold)


# --- clean_corpus ------------------------------------------------------------------------


def test_filters_return_keep_and_reason() -> None:
    config = CleaningConfig(min_chars=10, min_words=3)
    assert length_filter("", config) == (False, "empty_after_cleaning")
    assert length_filter("Ẹ kú", config) == (False, "too_short")
    assert length_filter(YORUBA_PARAGRAPH, config) == (True, None)


@pytest.mark.parametrize(
    "frame",
    [pd.DataFrame(columns=list(DOCUMENT_COLUMNS)), pd.DataFrame()],
    ids=["contract-columns", "no-columns"],
)
def test_empty_input(frame: pd.DataFrame) -> None:
    result = clean_corpus(frame, YOR, CleaningConfig())
    assert len(result.clean) == len(result.rejects) == 0
    assert list(result.clean.columns) == [*DOCUMENT_COLUMNS, *CLEAN_EXTRA_COLUMNS]
    assert list(result.rejects.columns) == [*DOCUMENT_COLUMNS, *REJECT_EXTRA_COLUMNS]
    assert result.clean["n_tokens"].dtype == "int64" and result.clean["lid_score"].dtype == "float64"
    assert result.drop_counts == dict.fromkeys(DROP_REASONS, 0)
    assert result.lid_method == "lingua" and result.stats["documents_in"] == 0


def test_missing_columns_fail_loudly() -> None:
    with pytest.raises(ValueError, match=r"lacks required columns: .*license"):
        clean_corpus(pd.DataFrame([{"doc_id": "a", "text": "x"}]), YOR)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_lid_score": 1.5}, "min_lid_score"),
        ({"near_duplicate_threshold": 0.0}, "near_duplicate_threshold"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"token_factor": 0}, "token_factor"),
        ({"min_words": -1}, "min_words"),
    ],
)
def test_config_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CleaningConfig(**kwargs)  # type: ignore[arg-type]


def test_hostile_rows_are_rejected_with_reasons_and_kept_as_they_were() -> None:
    rows = [
        _doc("ok", YORUBA_PARAGRAPH, extra_column=1),
        _doc("ok", YORUBA_OTHER, extra_column=2),  # repeated id
        _doc(None, YORUBA_OTHER, extra_column=3),  # type: ignore[arg-type]
        _doc("none", None, extra_column=4),
        _doc("nan", float("nan"), extra_column=5),
        _doc("int", 42, extra_column=6),
        _doc("short", "Ẹ kú àárọ̀ o.", extra_column=8),
        _doc(["a", "list"], "Ẹ kú àárọ̀ o.", extra_column=9),  # type: ignore[arg-type]
        _doc("html", "<div><script>x()</script></div>", extra_column=7),
    ]
    result = clean_corpus(pd.DataFrame(rows), YOR, CleaningConfig())
    assert result.clean["doc_id"].unique().tolist() == ["ok"]
    assert result.clean["extra_column"].tolist() == [1]  # extra input columns survive
    reasons = dict(zip(result.rejects["extra_column"], result.rejects["reason"], strict=True))
    assert reasons == {
        2: "invalid_doc_id",
        3: "invalid_doc_id",
        4: "empty_after_cleaning",
        5: "empty_after_cleaning",
        6: "empty_after_cleaning",  # digits only: no letters, so not content
        7: "empty_after_cleaning",
        8: "too_short",
        9: "too_short",  # an odd id type is stringified, not crashed on
    }
    assert result.rejects.loc[result.rejects["extra_column"] == 7, "text"].item() == rows[-1]["text"]
    assert sum(result.drop_counts.values()) == len(result.rejects) == 8


def test_chunk_ids_are_stable_and_unique() -> None:
    frame = pd.DataFrame([_doc("d1", f"{YORUBA_PARAGRAPH}\n\n{YORUBA_OTHER}"), _doc("d2", YORUBA_OTHER * 3)])
    first = clean_corpus(frame, YOR, CleaningConfig(max_tokens=60))
    second = clean_corpus(frame, YOR, CleaningConfig(max_tokens=60))
    assert first.clean["chunk_id"].tolist() == second.clean["chunk_id"].tolist()
    assert first.clean["chunk_id"].is_unique
    assert first.clean["chunk_id"].iloc[0] == chunk_id("d1", 0)
    assert (first.clean["n_tokens"] <= 60).all()
    assert set(first.clean["lid_lang"]) == {"yor"}


def test_min_lid_score_is_configurable() -> None:
    frame = pd.DataFrame([_doc("d1", YORUBA_PARAGRAPH)])
    assert len(clean_corpus(frame, YOR, CleaningConfig(min_lid_score=0.0)).clean) == 1
    strict = clean_corpus(frame, HAU, CleaningConfig(min_lid_score=0.0))  # Yoruba text, Hausa partition
    assert strict.drop_counts["wrong_language"] == 1
    assert strict.rejects["reason_detail"].item().startswith("langid says yor")


# --- the shipped sample documents ----------------------------------------------------------

SAMPLE_DROPS = {
    "sample-013": "exact_duplicate",
    "sample-014": "wrong_language",
    "sample-017": "near_duplicate",
    "sample-018": "too_short",
    "sample-019": "empty_after_cleaning",
}


@pytest.mark.parametrize("key", ["yor", "hau", "swh"])
def test_sample_documents_drop_the_deliberate_cases(key: str) -> None:
    path = SAMPLES_DIR / f"documents_{key}.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    docs = pd.DataFrame(raw)
    assert 12 <= len(docs) <= 20
    assert all(unicodedata.is_normalized("NFC", d["text"]) for d in raw)
    result = clean_corpus(docs, LANGUAGES[key], CleaningConfig(max_tokens=128))

    drops = {
        d.removeprefix(f"{key}-"): r
        for d, r in zip(result.rejects["doc_id"], result.rejects["reason"], strict=True)
    }
    assert drops == SAMPLE_DROPS
    assert result.drop_counts == {**dict.fromkeys(DROP_REASONS, 0), **dict.fromkeys(SAMPLE_DROPS.values(), 1)}
    assert result.lid_method == {"yor": "lingua", "hau": "langid", "swh": "lingua"}[key]

    clean = result.clean
    assert (clean["n_tokens"] <= 128).all() and (clean["lid_lang"] == key).all()
    n_chunks = clean.groupby("doc_id").size()
    assert n_chunks[f"{key}-sample-015"] > 1  # the long document is split ...
    assert (n_chunks.drop(f"{key}-sample-015") == 1).all()  # ... and only it

    mojibake = clean.loc[clean["doc_id"] == f"{key}-sample-008", "text"].item()
    original = raw[7]["text"]
    assert mojibake == ftfy.fix_text(original, uncurl_quotes=False) != original
    assert "Ã" not in mojibake and "â€" not in mojibake

    boiler = clean.loc[clean["doc_id"] == f"{key}-sample-012", "text"].item()
    for gone in ("Share this", "cookie", "©", "Follow us", "Ku biyo mu", "https://", " | "):
        assert gone not in boiler
    assert result.stats["boilerplate_lines_removed"] >= 10
    assert result.stats["ftfy_repaired_documents"] == 1
