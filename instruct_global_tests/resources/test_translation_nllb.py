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
# fast settings: the tiny model never stops on its own, so output length is the token budget
FAST = {"num_beams": 2, "max_length_ratio": 0.3, "max_new_tokens": 16}


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
    make_translator: Callable[..., NLLBTranslator], tiny_nllb: Path, tmp_path: Path
) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    from ctranslate2.converters import TransformersConverter

    try:
        converted = TransformersConverter(str(tiny_nllb)).convert(str(tmp_path / "ct2"))
    except Exception as exc:  # pragma: no cover - depends on the installed converter
        pytest.skip(f"CTranslate2 cannot convert the tiny NLLB model: {type(exc).__name__}: {exc}")
    assert ctranslate2.__version__

    texts = ["Good morning, friend.", "Where is the market? It is near.", "Go!"]
    ct2 = make_translator("ct2.db", engine="ctranslate2", ct2_model_dir=converted, num_beams=1)
    hf = make_translator("hf.db", num_beams=1)
    ct2_results = ct2.translate(texts, target=YOR)
    assert all(r.ok for r in ct2_results)
    assert [r.n_segments for r in ct2_results] == [1, 2, 1]
    # same weights, greedy: both engines pick the same tokens
    assert [r.text for r in ct2_results] == [r.text for r in hf.translate(texts, target=YOR)]
    assert ct2.stats().calls == 1
    # the engine is part of the cache key: no cross-talk between engines
    assert ct2.translate(texts, target=YOR)[0].cached_segments == 1
