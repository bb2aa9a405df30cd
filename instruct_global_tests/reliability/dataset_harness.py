"""The dataset job for one partition (yor) against local servers, with or without a fault proxy in front.

The servers: ``CorpusServer`` (MediaWiki API and BBC pages; its Yoruba wiki holds the shipped Yoruba
sample documents), ``OpenAIServer`` for the generator (skeletons, self-instruct, backtranslation,
through ``OpenAICompatibleLLM``), ``AnthropicServer`` for the self-curation judge (``AnthropicLLM``)
and ``GoogleTranslateServer`` (``GoogleTranslator``). Every answer is a pure function of the request,
so two runs with the same seeds give the same outputs whatever the order requests arrive in.

The same wiring serves the in-process fault runs (``resources``) and the subprocess crash runs
(``reliability_definitions`` reads the URLs from ``env_for``'s variables).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from instruct_global.resources.call_cache import CallCacheResource
from instruct_global.resources.finetuning import HuggingFaceHubResource
from instruct_global.resources.http import HttpFetcherResource
from instruct_global.resources.llm_anthropic import AnthropicLLM
from instruct_global.resources.llm_openai import OpenAICompatibleLLM
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global.resources.translation_google import GoogleTranslator
from instruct_global_tests.conftest import REPO_ROOT
from instruct_global_tests.fixtures.anthropic_server import AnthropicServer
from instruct_global_tests.fixtures.corpus_server import WIKI_ARTICLES, CorpusServer
from instruct_global_tests.fixtures.curate_llm import CurateResponder
from instruct_global_tests.fixtures.google_translate_server import GoogleTranslateServer
from instruct_global_tests.fixtures.openai_server import OpenAIServer
from instruct_global_tests.fixtures.scripted_llm import GenerationResponder
from instruct_global_tests.reliability.fault_proxy import FaultProxy

PARTITION = "yor"
SCHEMA_DIR = REPO_ROOT / "data" / "schema" / "yor"
SEEDS = REPO_ROOT / "data" / "seed_tasks" / "seed_tasks.jsonl"
SAMPLE_DOCS = REPO_ROOT / "data" / "samples" / "documents_yor.jsonl"
ANTHROPIC_KEY = "sk-ant-reliability-test-key-0123456789"

# the client timeout every backend gets here: a "timeout" fault sleeps just past it
CLIENT_TIMEOUT_S = 2.0
# retries enough to outlast the proxy's faults (at most 2 in a row per payload), waits in milliseconds;
# Retry-After (0 or 1 s from the proxy) is obeyed as sent
LLM_RETRY: dict[str, Any] = {"max_retries": 4, "backoff_base_seconds": 0.01, "max_backoff_seconds": 0.05,
                             "timeout_seconds": CLIENT_TIMEOUT_S}  # fmt: skip

YORUBA_WORDS = ["ọjà", "àgbẹ̀", "òjò", "ilé", "ìwé", "olùkọ́", "ọmọ", "ìtàn", "òwe", "orin", "ìlù", "ọdún", "ẹbí",
                "àgbà", "ìyá", "bàbá", "oníṣòwò", "owó", "iṣu", "àgbàdo", "ẹja", "omi", "ọ̀nà", "ìlú", "abúlé",
                "ìròyìn", "ìlera", "àṣà", "oúnjẹ", "ọ̀rọ̀", "ẹ̀kọ́", "àlàyé", "kọ", "sọ", "ṣe", "fún", "wa"]  # fmt: skip
_KEEP = re.compile(r"(\{variable_\d+\}|_{1,3}\s*[Vv]\s*\d+\s*_{1,3})")


def fake_yoruba(text: str, source: str | None, target: str) -> str:
    """Word-for-word 'Yoruba' (English for backtranslation checks) that keeps placeholders and sentinels."""
    if target.startswith("en"):
        return " ".join(f"word{len(w)}" for w in text.split()) or text
    out = []
    for token in _KEEP.split(text):
        if _KEEP.fullmatch(token):
            out.append(token)
        else:
            words = token.split()
            out.append(" ".join(YORUBA_WORDS[(len(w) * 7 + i) % len(YORUBA_WORDS)] for i, w in enumerate(words)))
    return " ".join(p for p in out if p)


class DatasetResponder:
    """Generation prompts to ``GenerationResponder``, backtranslation and rubric prompts to ``CurateResponder``;
    reads OpenAI and Anthropic request bodies alike."""

    def __init__(self) -> None:
        self.generation = GenerationResponder(seed=3, hostile=False)
        self.curate = CurateResponder()

    def __call__(self, body: dict[str, Any]) -> Any:
        messages = [m for m in body.get("messages") or [] if isinstance(m.get("content"), str)]
        system = body.get("system")
        if isinstance(system, list):
            system = " ".join(b.get("text", "") for b in system if isinstance(b, dict))
        if isinstance(system, str) and system:
            messages = [{"role": "system", "content": system}, *messages]
        openai_like = {**body, "messages": messages}
        prompt = "\n".join(m["content"] for m in messages)
        if "<segment>" in prompt.lower() or "5-point scale" in prompt:
            return self.curate(openai_like)
        return self.generation(openai_like)


def sample_wiki_articles() -> dict[str, list[tuple[str, str]]]:
    docs = pd.read_json(SAMPLE_DOCS, lines=True, dtype=False)
    return {**WIKI_ARTICLES, "yo": [*WIKI_ARTICLES["yo"], *zip(docs["title"], docs["text"], strict=True)]}


@dataclass
class Servers:
    corpus: CorpusServer
    openai: OpenAIServer
    anthropic: AnthropicServer
    google: GoogleTranslateServer
    proxies: dict[str, FaultProxy] = field(default_factory=dict)

    def url(self, name: str) -> str:
        """Where the clients go: the proxy when there is one."""
        if name in self.proxies:
            return self.proxies[name].url
        return {"corpus": self.corpus.base_url, "openai": self.openai.root_url,
                "anthropic": self.anthropic.root_url, "google": self.google.url}[name]  # fmt: skip

    def paid(self) -> dict[str, int]:
        """Answered (billed) model and translation requests per server."""
        return {"openai": self.openai.counts["chat"], "anthropic": self.anthropic.counts["messages"],
                "google": len([r for r in self.google.translate_requests if r.answered_status == 200])}  # fmt: skip


SERVER_NAMES = ("corpus", "openai", "anthropic", "google")


@contextlib.contextmanager
def dataset_servers(ports: list[int], seed: int = 0, rate: float = 0.0) -> Iterator[Servers]:
    """The four servers, each behind its own ``FaultProxy`` on the given ports (so two runs see the same
    URLs); ``rate`` 0 passes everything through, the proxies' seeds derive from ``seed``."""
    with contextlib.ExitStack() as stack:
        corpus = stack.enter_context(CorpusServer(wiki_articles=sample_wiki_articles()))
        openai = stack.enter_context(OpenAIServer(responder=DatasetResponder()))
        anthropic = stack.enter_context(AnthropicServer(responder=DatasetResponder()))
        google = stack.enter_context(GoogleTranslateServer(translate=fake_yoruba))
        servers = Servers(corpus, openai, anthropic, google)
        upstreams = {"corpus": corpus.base_url, "openai": openai.root_url, "anthropic": anthropic.root_url,
                     "google": google.url}  # fmt: skip
        for offset, name in enumerate(SERVER_NAMES):
            servers.proxies[name] = stack.enter_context(
                FaultProxy(upstreams[name], protocol=name, seed=seed * 10 + offset, rate=rate,  # type: ignore[arg-type]
                           timeout_s=CLIENT_TIMEOUT_S, port=ports[offset])
            )
        yield servers


def resources(servers: Servers, cache_path: Path | None) -> dict[str, Any]:
    return resources_for({name: servers.url(name) for name in SERVER_NAMES}, cache_path)


def resources_for(urls: dict[str, str], cache_path: Path | None) -> dict[str, Any]:
    """The job's resources pointed at ``urls`` (corpus, openai, anthropic, google); the cache at
    ``cache_path`` (None: the default, under the data dir)."""
    cache = CallCacheResource(url=str(cache_path) if cache_path else None)
    return {
        "io_manager": PartitionedParquetIOManager(),
        "call_cache": cache,
        "hub": HuggingFaceHubResource(),
        "http": HttpFetcherResource(min_interval_seconds=0.0, timeout_seconds=CLIENT_TIMEOUT_S, max_retries=4,
                                    backoff_base_seconds=0.01, max_backoff_seconds=0.05),
        "llm": OpenAICompatibleLLM(model="local-model", cache=cache, base_url=f"{urls['openai']}/v1", **LLM_RETRY),
        "judge_llm": AnthropicLLM(model="claude-haiku-4-5", cache=cache, base_url=urls["anthropic"],
                                  api_key=ANTHROPIC_KEY, **LLM_RETRY),
        "translator": GoogleTranslator(
            cache=cache, project_id="test-project", api_endpoint=urls["google"],
            anonymous_credentials_for_testing=True, timeout_s=CLIENT_TIMEOUT_S, max_retries=4,
            backoff_initial_s=0.01, backoff_max_s=1.5, max_codepoints_per_request=300,
        ),
    }


def schema_with_licence(folder: Path) -> Path:
    """The shipped Yoruba schema, with a licence on its first dataset (so its rows reach the dataset)."""
    shutil.copytree(SCHEMA_DIR, folder, dirs_exist_ok=True)
    schema = pd.read_csv(folder / "input_schema.csv", dtype=str, keep_default_na=False)
    schema["license"] = ["CC-BY-4.0"] + [""] * (len(schema) - 1)
    schema.to_csv(folder / "input_schema.csv", index=False)
    return folder / "input_schema.csv"


def run_config(servers: Servers, schema_csv: Path) -> dict[str, Any]:
    corpus = servers.url("corpus")
    return {"ops": {
        "wikipedia_articles": {"config": {"source": "api", "api_url": corpus + "/{wiki}/w/api.php",
                                          "max_articles": 100, "workers": 1}},
        "bbc_articles": {"config": {"source": "live", "base_url": corpus, "max_articles": 20}},
        "source_records": {"config": {"schema_csv": str(schema_csv)}},
        "clean_documents": {"config": {"max_tokens": 48, "workers": 1, "min_chars": 60, "min_words": 8}},
        "skeleton_questions": {"config": {"dataset_size": 24, "templates_per_dataset": 3}},
        "self_instruct_instructions": {"config": {"target_count": 12, "seed_tasks_path": str(SEEDS),
                                                  "prompts_per_round": 2, "tasks_per_prompt": 6}},
        "backtranslated_pairs": {"config": {"min_tokens": 8, "max_per_document": 3, "max_segments": 40}},
        "curated_pairs": {"config": {"threshold": 4}},
        "diversified_pairs": {"config": {"target_size": 0}},
        "instruction_dataset": {"config": {"allowed_licenses": ["CC-BY-SA-4.0", "CC-BY-4.0", "machine-generated",
                                                                "BBC-copyright", "unspecified"]}},
    }}  # fmt: skip


# columns that hold when or where a run happened, not what it produced
VOLATILE = re.compile(r"(^|_)(retrieved_at|created_at|generated_at|materialized_at|timestamp|path|dir)$")


def read_outputs(data_dir: Path, partition: str = PARTITION) -> dict[str, pd.DataFrame]:
    """Every Parquet output of the partition, run-specific columns dropped, rows in a stable order."""
    outputs: dict[str, pd.DataFrame] = {}
    for path in sorted(data_dir.glob(f"*/{partition}.parquet")):
        frame = pd.read_parquet(path)
        frame = frame.drop(columns=[c for c in frame.columns if VOLATILE.search(c)])
        key = [c for c in ("id", "instruction_id", "doc_id", "chunk_id", "record_id") if c in frame.columns]
        if len(frame) and key:
            frame = frame.sort_values(key[:2], kind="stable").reset_index(drop=True)
        outputs[path.parent.name] = frame
    return outputs


def export_files(data_dir: Path, partition: str = PARTITION) -> dict[str, str]:
    """The exported text files (JSONL, Alpaca JSON, the card) by name."""
    out: dict[str, str] = {}
    for path in sorted((data_dir / "export" / partition).glob("*.json*")):
        out[path.name] = path.read_text(encoding="utf-8")
    card = data_dir / "instruction_dataset" / f"{partition}.card.md"
    if card.exists():
        out[card.name] = card.read_text(encoding="utf-8")
    return out


def describe(outputs: dict[str, pd.DataFrame]) -> str:
    return json.dumps({name: len(frame) for name, frame in outputs.items()})
