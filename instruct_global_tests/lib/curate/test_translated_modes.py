"""The modes that use the translator, through the real Google v3 SDK against the local server: the
instruction translated into the language, and an English gloss of the segment shown first. The
response stays the human-written segment; the translator never touches it."""

from __future__ import annotations

from pathlib import Path

from instruct_global.languages import get_language
from instruct_global.lib.curate.pairs import BacktranslationSettings, backtranslate
from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global_tests.fixtures.curate_llm import CurateResponder, tagged
from instruct_global_tests.fixtures.google_translate_server import GoogleTranslateServer
from instruct_global_tests.fixtures.llm_testing import openai_llm
from instruct_global_tests.fixtures.openai_server import OpenAIServer
from instruct_global_tests.lib.curate.test_pairs_through_client import YORUBA, segments


def test_target_instruction_with_english_gloss(tmp_path: Path) -> None:
    yor = get_language("yor")
    with OpenAIServer() as llm_server, GoogleTranslateServer() as mt:
        responder = CurateResponder(hostile=False)
        llm_server.responder = responder
        llm = openai_llm(llm_server, tmp_path / "calls.sqlite")
        translator = GoogleTranslator(
            cache=CallCacheResource(url=str(tmp_path / "calls.sqlite")), project_id="p", api_endpoint=mt.url,
            anonymous_credentials_for_testing=True, backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5.0)

        def run(texts, source, target):
            return [r.text if r.ok else None for r in translator.translate(texts, source=source, target=target)]

        settings = BacktranslationSettings(mode="target_instruction", show_segment_translation=True)
        result = backtranslate(segments(YORUBA[:3]), "yor", "Yoruba", llm.complete, settings,
                               to_english=lambda t: run(t, yor, "eng"), to_target=lambda t: run(t, "eng", yor),
                               translator='{"backend": "google"}')
        requests = mt.translate_requests
    rows = result.rows
    assert len(rows) == 3
    assert (rows["instruction_lang"] == "yor").all() and rows["instruction"].str.startswith("[yo] ").all()
    assert (rows["instruction"] == "[yo] " + rows["instruction_en"]).all()
    assert rows["output_en"].str.startswith("[en] ").all()
    assert list(rows["output"]) == YORUBA[:3]  # the response is the segment, never a translation
    # the model saw the English gloss before the segment
    prompt = responder.generation_prompts[0]
    assert tagged(prompt, "translation").startswith("[en] ") and prompt.index("<translation>") < prompt.index("<segment>")
    directions = {(r.body.get("sourceLanguageCode"), r.body.get("targetLanguageCode")) for r in requests}
    assert directions == {("yo", "en"), ("en", "yo")}
    assert (rows["translator"] == '{"backend": "google"}').all()
