"""NLLBTranslator on a tiny random NLLB model: mechanics, not translation quality."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any transformers import: never try the hub

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from instruct_global.languages import UnsupportedLanguageError, get_language
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.translation_nllb import ModelNotAvailableError, NLLBTranslator
from instruct_global_tests.fixtures.tiny_nllb import build_tiny_nllb

YOR, AMH = get_language("yor"), get_language("amh")
# fast settings: the tiny model ends every output after 3 to 8 tokens (at most 10 new tokens with the
# language code and </s>), inside the budget these give (at least 11)
FAST = {"num_beams": 2, "max_length_ratio": 0.3, "max_new_tokens": 16}
CUT_OFF = "cut off at {} new tokens (no end of sequence)"


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread() -> Iterator[None]:
    # tiny matrices: thread hand-offs cost more than the maths, and on a busy shared machine
    # two intra-op threads made generation about 7x slower than one
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("tiny-nllb"))


@pytest.fixture(scope="module")
def never_ending_nllb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_nllb(tmp_path_factory.mktemp("tiny-nllb-never-ends"), ends=False)


@pytest.fixture(scope="module")
def tiny_nllb_ct2(tiny_nllb: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("ctranslate2")
    from ctranslate2.converters import TransformersConverter

    try:
        output_dir = tmp_path_factory.mktemp("tiny-nllb-ct2") / "ct2"
        return TransformersConverter(str(tiny_nllb)).convert(str(output_dir))
    except Exception as exc:  # pragma: no cover - depends on the installed converter
        pytest.skip(f"CTranslate2 cannot convert the tiny NLLB model: {type(exc).__name__}: {exc}")


@pytest.fixture
def make_translator(tiny_nllb: Path, tmp_path: Path) -> Callable[..., NLLBTranslator]:
    def make(cache_name: str = "calls.db", **overrides: Any) -> NLLBTranslator:
        settings: dict[str, Any] = {"model_name": str(tiny_nllb), "device": "cpu", **FAST, **overrides}
        return NLLBTranslator(cache=CallCacheResource(url=str(tmp_path / cache_name)), **settings)

    return make


class GenerateSpy:
    """Wraps model.generate to record its inputs and outputs."""

    def __init__(self, model: Any) -> None:
        self.original = model.generate
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        output = self.original(**kwargs)
        self.calls.append({**kwargs, "output": output})
        return output


@pytest.fixture
def spy(
    make_translator: Callable[..., NLLBTranslator], monkeypatch: pytest.MonkeyPatch
) -> Iterator[GenerateSpy]:
    model = make_translator().load().model  # the process-wide runtime every test translator shares
    recorder = GenerateSpy(model)
    monkeypatch.setattr(model, "generate", recorder)
    yield recorder


def test_forced_bos_is_the_target_language_and_source_code_leads_the_input(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    translator = make_translator()
    tokenizer = translator.load().tokenizer
    for target in (YOR, AMH):
        results = translator.translate(["Good morning, friend.", "Where is the market?"], target=target)
        assert all(r.ok for r in results)
        call = spy.calls[-1]
        target_id = tokenizer.convert_tokens_to_ids(target.nllb_code)
        assert call["forced_bos_token_id"] == target_id
        # decoder starts with </s>, then the forced language code
        assert call["output"][:, 1].tolist() == [target_id] * 2
        assert call["input_ids"][:, 0].tolist() == [tokenizer.convert_tokens_to_ids("eng_Latn")] * 2
        assert call["num_beams"] == FAST["num_beams"]


def test_source_language_other_than_english(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    translator = make_translator()
    [result] = translator.translate(["ሰላም ነው።"], source="amh", target=YOR)
    assert result.ok
    tokenizer = translator.load().tokenizer
    assert spy.calls[-1]["input_ids"][0, 0].item() == tokenizer.convert_tokens_to_ids("amh_Ethi")


def test_long_text_is_split_into_sentences_and_rejoined(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    text = (
        "The market opens early. Traders bring yams and pepper.\n\n"
        "Buyers arrive by noon! Prices fall in the evening? Everyone goes home at night."
    )
    translator = make_translator(batch_size=16)
    [result] = translator.translate([text], target=YOR)
    assert result.ok and result.n_segments == 5 and result.cached_segments == 0
    assert sum(call["input_ids"].shape[0] for call in spy.calls) == 5  # one row per sentence
    paragraphs = result.text.split("\n\n")
    assert len(paragraphs) == 2 and all(p.strip() for p in paragraphs)


def test_batches_are_bucketed_by_length_and_order_is_restored(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    # distinct lengths: the same batches form whatever the input order, so outputs must match exactly
    texts = [
        "Hi.",
        "A much longer sentence about rivers and rain.",
        "Medium length text here.",
        "Okay then.",
        "Go on!",
    ]
    forward = make_translator("a.db", batch_size=2).translate(texts, target=YOR)
    n_calls = len(spy.calls)
    backward = make_translator("b.db", batch_size=2).translate(texts[::-1], target=YOR)

    assert n_calls == 3  # 5 segments in batches of 2
    assert [r.text for r in forward] == [r.text for r in backward][::-1]
    assert len({r.text for r in forward}) == len(texts)  # outputs depend on the input
    lengths = [(call["attention_mask"].sum(dim=1)).tolist() for call in spy.calls[:n_calls]]
    flat = [n for batch in lengths for n in batch]
    assert flat == sorted(flat, reverse=True)  # longest first, similar lengths together


def test_second_call_is_served_from_cache_with_zero_model_calls(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    texts = ["One sentence. Two sentences.", "", "Another one.", "One sentence."]
    first = make_translator().translate(texts, target=YOR)
    calls_after_first = len(spy.calls)
    assert calls_after_first >= 1
    assert sum(call["input_ids"].shape[0] for call in spy.calls) == 3  # duplicates translated once

    again = make_translator()  # a fresh resource on the same cache: a re-run
    second = again.translate(texts, target=YOR)
    assert len(spy.calls) == calls_after_first
    assert [r.text for r in second] == [r.text for r in first]
    assert [r.cached_segments for r in second] == [2, 0, 1, 1]
    assert first[1].text == "" and first[1].n_segments == 0
    stats = again.stats()
    assert stats.calls == 0 and stats.cache_hits == 3

    # another target language is another cache entry
    make_translator().translate(["Another one."], target=AMH)
    assert len(spy.calls) == calls_after_first + 1


def test_default_beam_search_runs(make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy) -> None:
    translator = make_translator(num_beams=4, max_length_ratio=2.0, max_new_tokens=512)
    [result] = translator.translate(["Short text."], target=YOR)
    assert result.ok
    call = spy.calls[-1]
    assert call["num_beams"] == 4
    assert call["max_new_tokens"] == 2 * call["input_ids"].shape[1] + 10
    stats = translator.stats()
    assert stats.calls == 1 and stats.input_tokens == call["input_ids"].shape[1] and stats.output_tokens > 0


def test_over_long_segment_fails_its_text_only_and_is_not_cached(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    translator = make_translator(max_input_tokens=20, max_segment_chars=400)
    long_text = "This sentence is far too long for the tiny token budget."
    results = translator.translate([long_text, "Fine."], target=YOR)
    assert results[0].text is None and "max_input_tokens=20" in results[0].error
    assert results[1].ok
    assert translator.stats().failures == 1
    assert make_translator(max_input_tokens=20).translate([long_text], target=YOR)[0].error


def test_unsupported_language_names_language_and_backend(
    make_translator: Callable[..., NLLBTranslator],
) -> None:
    translator = make_translator()
    pidgin = get_language("pcm")
    assert not translator.supports(pidgin) and translator.supports(YOR)
    with pytest.raises(UnsupportedLanguageError, match=r"Nigerian Pidgin \(pcm\).*NLLB-200"):
        translator.translate(["Hello."], target=pidgin)
    with pytest.raises(UnsupportedLanguageError, match="NLLB-200"):
        translator.translate(["Hello."], source="pcm", target=YOR)


def test_load_in_8bit_on_cpu_is_a_clear_error(make_translator: Callable[..., NLLBTranslator]) -> None:
    with pytest.raises(RuntimeError, match="load_in_8bit=True needs a CUDA GPU"):
        make_translator(load_in_8bit=True).translate(["Hello."], target=YOR)


def test_missing_model_offline_says_how_to_fetch_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    translator = NLLBTranslator(cache=CallCacheResource(url=str(tmp_path / "c.db")), device="cpu")
    with pytest.raises(ModelNotAvailableError) as info:
        translator.translate(["Hello."], target=YOR)
    message = str(info.value)
    assert "facebook/nllb-200-distilled-600M" in message and "huggingface-cli download" in message
    assert "local folder" in message


def test_ctranslate2_engine_needs_a_converted_model(make_translator: Callable[..., NLLBTranslator]) -> None:
    with pytest.raises(ModelNotAvailableError, match="ct2-transformers-converter"):
        make_translator(engine="ctranslate2").translate(["Hello."], target=YOR)


def test_ctranslate2_cache_key_names_the_converted_model(make_translator: Callable[..., NLLBTranslator]) -> None:
    """Two converted models (600M, 3.3B) read with one tokenizer (model_name) must not share answers."""
    small = make_translator(engine="ctranslate2", ct2_model_dir="models/nllb-600M-ct2")
    large = make_translator(engine="ctranslate2", ct2_model_dir="models/nllb-3.3B-ct2")
    assert small.model_id() == large.model_id()
    assert small.cache_params() != large.cache_params()
    assert make_translator().cache_params() == make_translator(ct2_model_dir="unused").cache_params()


def test_ctranslate2_engine_on_the_tiny_model(
    make_translator: Callable[..., NLLBTranslator], tiny_nllb_ct2: str
) -> None:
    import ctranslate2

    assert ctranslate2.__version__
    texts = ["Good morning, friend.", "Where is the market? It is near.", "Go!"]
    ct2 = make_translator("ct2.db", engine="ctranslate2", ct2_model_dir=tiny_nllb_ct2, num_beams=1)
    hf = make_translator("hf.db", num_beams=1)
    ct2_results = ct2.translate(texts, target=YOR)
    assert all(r.ok for r in ct2_results)
    assert [r.n_segments for r in ct2_results] == [1, 2, 1]
    # same weights, greedy: both engines pick the same tokens
    assert [r.text for r in ct2_results] == [r.text for r in hf.translate(texts, target=YOR)]
    assert ct2.stats().calls == 1
    # the engine is part of the cache key: no cross-talk between engines
    assert ct2.translate(texts, target=YOR)[0].cached_segments == 1


# ---- outputs cut off at the token budget ---------------------------------------------------------
def test_output_cut_off_at_the_token_budget_is_an_error_and_not_cached(
    make_translator: Callable[..., NLLBTranslator], never_ending_nllb: Path
) -> None:
    settings = {"model_name": str(never_ending_nllb), "max_new_tokens": 12}
    translator = make_translator(**settings)
    results = translator.translate(["Good morning, friend.", "Hi."], target=YOR)
    for result in results:  # the junk ran to the budget: a truncated text, never data
        assert result.text is None
        assert CUT_OFF.format(12) in result.error and "max_new_tokens" in result.error
        assert "max_length_ratio" in result.error
    assert translator.stats().failures == 2

    again = make_translator(**settings)  # a re-run on the same cache asks the model again
    assert all(not r.ok and r.cached_segments == 0 for r in again.translate(["Hi."], target=YOR))
    assert again.stats().calls == 1 and again.stats().cache_hits == 0


def test_a_cut_off_output_fails_and_a_higher_budget_then_succeeds(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    text = ["Where is the market?"]
    [cut] = make_translator(max_new_tokens=4).translate(text, target=YOR)  # 4 < 3 tokens + code + </s>
    assert cut.text is None and CUT_OFF.format(4) in cut.error
    assert spy.calls[-1]["output"].shape[1] == 1 + 4  # decoder start + the whole budget, no </s>

    [retry] = make_translator(max_new_tokens=4).translate(text, target=YOR)
    assert not retry.ok and retry.cached_segments == 0 and len(spy.calls) == 2  # the error was not cached

    [done] = make_translator().translate(text, target=YOR)  # FAST: max_new_tokens=16
    assert done.ok and done.text and done.cached_segments == 0 and len(spy.calls) == 3
    tokenizer = make_translator().load().tokenizer
    assert tokenizer.eos_token_id in spy.calls[-1]["output"][0, 1:].tolist()
    [cached] = make_translator().translate(text, target=YOR)
    assert cached.text == done.text and cached.cached_segments == 1 and len(spy.calls) == 3


def test_one_batch_keeps_the_ended_outputs_and_fails_the_cut_off_ones(
    make_translator: Callable[..., NLLBTranslator], spy: GenerateSpy
) -> None:
    """Ended rows are padded after </s> while the others run on: each row is judged on its own."""
    texts = [
        "Hi.",
        "A much longer sentence about rivers and rain.",
        "Medium length text here.",
        "Okay then.",
        "Go on!",
        "Good morning, friend.",
        "Where is the market?",
        "Short text.",
    ]
    full = make_translator("full.db", num_beams=1).translate(texts, target=YOR)
    assert all(r.ok for r in full)
    eos = make_translator().load().tokenizer.eos_token_id
    # new tokens each output needs: language code, junk, </s> (padding after </s> where it ended early)
    rows = spy.calls[-1]["output"][:, 1:].tolist()
    needed = sorted(row.index(eos) + 1 for row in rows)
    budget = needed[len(needed) // 2]
    assert needed[0] <= budget < needed[-1]  # the fixture ends outputs at different steps

    spy.calls.clear()
    short = make_translator("short.db", num_beams=1, max_new_tokens=budget).translate(texts, target=YOR)
    assert len(spy.calls) == 1  # one batch
    kept = [r for r in short if r.ok]
    assert 0 < len(kept) < len(texts)
    for before, after in zip(full, short, strict=True):  # greedy: the same tokens up to the budget
        if after.ok:
            assert after.text == before.text
        else:
            assert after.text is None and CUT_OFF.format(budget) in after.error


def test_ctranslate2_cut_off_output_is_an_error_as_in_transformers(
    make_translator: Callable[..., NLLBTranslator], tiny_nllb_ct2: str
) -> None:
    texts = ["Good morning, friend.", "Where is the market?", "Go!", "Hi.", "Okay then.", "Short text."]
    full = make_translator("full.db", engine="ctranslate2", ct2_model_dir=tiny_nllb_ct2, num_beams=1)
    assert all(r.ok for r in full.translate(texts, target=YOR))

    outcomes = {}
    for budget in (4, 7):
        ct2 = make_translator(f"ct2-{budget}.db", engine="ctranslate2", ct2_model_dir=tiny_nllb_ct2,
                              num_beams=1, max_new_tokens=budget)  # fmt: skip
        hf = make_translator(f"hf-{budget}.db", num_beams=1, max_new_tokens=budget)
        ct2_results, hf_results = ct2.translate(texts, target=YOR), hf.translate(texts, target=YOR)
        # the two engines agree on which outputs ended within the budget, and on their text
        assert [(r.text, r.error) for r in ct2_results] == [(r.text, r.error) for r in hf_results]
        outcomes[budget] = [r.ok for r in ct2_results]
        for result in ct2_results:
            assert result.ok or CUT_OFF.format(budget) in result.error
        # errors are not cached: a re-run asks the model again
        rerun = make_translator(f"ct2-{budget}.db", engine="ctranslate2", ct2_model_dir=tiny_nllb_ct2,
                                num_beams=1, max_new_tokens=budget)  # fmt: skip
        rerun_results = rerun.translate(texts, target=YOR)
        assert [r.cached_segments for r in rerun_results] == [int(ok) for ok in outcomes[budget]]
        assert rerun.stats().calls == (0 if all(outcomes[budget]) else 1)
    assert not any(outcomes[4])  # no output ends within 4 tokens (3 junk tokens at least)
    assert any(outcomes[7]) and not all(outcomes[7])  # some end within 7, some do not
