"""A local causal LM through transformers: the tokenizer's chat template, batched generation.

CUDA in bf16 when a GPU is there, else CPU in float32; 4/8-bit (bitsandbytes) only on a GPU.
Requests that share generation settings are generated together, left-padded, ``batch_size`` at a
time; every finished batch is written to the call cache at once. Cost is 0.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr

from instruct_global.lib.common.llm_types import ChatRequest, ChatResult
from instruct_global.lib.common.preflight import Problem, hf_model_problem, hub_offline
from instruct_global.resources.llm import Answer, LLMResource

QUANTIZATIONS = ("4bit", "8bit")


class LocalModelError(RuntimeError):
    """The local model cannot be loaded or used as configured."""


def _load_error(model: str, exc: BaseException) -> LocalModelError:
    path = Path(model).expanduser()
    download = "`hf download <hub name> --local-dir <folder>` (older: `huggingface-cli download`)"
    if path.is_dir():
        present = {p.name for p in path.iterdir()}
        missing = [n for n in ("config.json", "tokenizer_config.json") if n not in present]
        if not any(n.endswith((".safetensors", ".bin")) for n in present):
            missing.append("model weights (*.safetensors)")
        detail = (
            f"the folder {path} lacks {', '.join(missing)}" if missing else f"the folder {path} did not load"
        )
        fix = f"put a complete model there, e.g. with {download.replace('<folder>', str(path))}"
    elif model.startswith(("/", ".", "~")):
        detail = f"there is no folder {path}"
        fix = f"download the model with {download} and set `model` to that folder"
    else:
        detail = f"{model!r} is not in the local Hugging Face cache and offline runs cannot download it"
        fix = (
            f"download it once with `hf download {model}` (older: `huggingface-cli download {model}`), "
            "or set `model` to a local folder holding config.json, the weights and the tokenizer files"
        )
    return LocalModelError(
        f"Could not load the local model {model!r}: {detail} ({type(exc).__name__}: {exc}). Fix: {fix}."
    )


class LocalTransformersLLM(LLMResource):
    """A chat model run in-process with transformers (``model`` is a hub name or a local folder)."""

    quantization: str | None = Field(
        default=None, description='"4bit" or "8bit" (bitsandbytes, CUDA GPU only), or None for bf16/float32.'
    )
    device: str | None = Field(default=None, description='"cuda", "cpu", ...; None: cuda when available.')
    batch_size: int = Field(default=8, ge=1, description="Prompts generated together.")
    revision: str | None = Field(
        default=None, description="Hub revision, or any label of the local weights; part of the cache key."
    )
    local_files_only: bool = Field(default=False, description="Never try the hub (also HF_HUB_OFFLINE=1).")
    trust_remote_code: bool = False

    backend_name: ClassVar[str] = "transformers"
    supports_batch: ClassVar[bool] = False

    _loaded: tuple[Any, Any, str] | None = PrivateAttr(default=None)

    def _cost(self, model: str, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        return 0.0  # own hardware

    def _model_for(self, request: ChatRequest) -> str:
        # one loaded model answers every request (request.model is ignored); new weights under the
        # same path need a new ``revision`` to miss the cache
        return f"{self.model}@{self.revision}" if self.revision else self.model

    def preflight_problems(self) -> list[Problem]:
        fix = (
            f"download it once with `hf download {self.model}` on a machine with network (copy the Hugging Face "
            "cache, HF_HOME), or set INSTRUCT_GLOBAL_LLM_MODEL to a local model folder; offline without a model, "
            "use INSTRUCT_GLOBAL_LLM=llamacpp (the embedded GGUF model, or any .gguf file); or a server or API: "
            "INSTRUCT_GLOBAL_LLM=openai-compatible with INSTRUCT_GLOBAL_LLM_BASE_URL (vLLM, Ollama), "
            "INSTRUCT_GLOBAL_LLM=openai / anthropic with OPENAI_API_KEY / ANTHROPIC_API_KEY"
        )
        offline = self.local_files_only or hub_offline()
        problem = hf_model_problem(
            self.model, f"LLM model {self.model!r} (transformers)", fix, offline=offline, revision=self.revision
        )
        return [problem] if problem else []

    def _resolve_device(self) -> str:
        import torch

        if self.quantization is not None:
            if self.quantization not in QUANTIZATIONS:
                raise LocalModelError(
                    f"quantization must be one of {QUANTIZATIONS} or None, not {self.quantization!r}"
                )
            if not torch.cuda.is_available():
                raise LocalModelError(
                    f"quantization={self.quantization!r} needs a CUDA GPU (bitsandbytes quantises on the GPU) and "
                    "none is available here: set quantization to None to run unquantised on the CPU, or run on a "
                    "machine with an NVIDIA GPU and the CUDA build of torch."
                )
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.quantization is not None and not device.startswith("cuda"):
            raise LocalModelError(
                f"quantization={self.quantization!r} runs on a CUDA device, not on {device!r}"
            )
        return device

    def load(self) -> tuple[Any, Any, str]:
        """(model, tokenizer, device), loaded once per resource instance."""
        with self._setup_lock:
            if self._loaded is not None:
                return self._loaded
        device = self._resolve_device()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        common = {
            # offline (HF_HUB_OFFLINE, or the hub unreachable): local files only, no minutes of retries
            "local_files_only": self.local_files_only or hub_offline(),
            "trust_remote_code": self.trust_remote_code,
            "revision": self.revision,
        }
        kwargs: dict[str, Any] = dict(common)
        if self.quantization:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = (
                BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
                )
                if self.quantization == "4bit"
                else BitsAndBytesConfig(load_in_8bit=True)
            )
            kwargs["device_map"] = {"": device}
        kwargs["dtype"] = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model, **common)
            model = AutoModelForCausalLM.from_pretrained(self.model, **kwargs)
        except (OSError, ValueError) as exc:
            raise _load_error(self.model, exc) from exc
        if not self.quantization:
            model.to(device)
        model.eval()
        if getattr(tokenizer, "chat_template", None) is None:
            raise LocalModelError(
                f"the tokenizer of {self.model!r} has no chat template: use an instruction-tuned model, or add "
                "a chat_template to its tokenizer_config.json"
            )
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        with self._setup_lock:
            self._loaded = (model, tokenizer, device)
        return self._loaded

    def _complete_online(self, pending: dict[str, ChatRequest]) -> dict[str, ChatResult]:
        if not pending:
            return {}
        model, tokenizer, device = self.load()
        cache = self.cache.get_cache()
        groups: dict[tuple[Any, ...], list[tuple[str, ChatRequest]]] = defaultdict(list)
        for key, request in pending.items():
            settings = (
                request.max_tokens,
                request.temperature,
                request.top_p,
                request.n,
                request.stop,
                request.seed,
            )
            groups[settings].append((key, request))
        results: dict[str, ChatResult] = {}
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                try:
                    answers = self._generate(model, tokenizer, device, [r for _, r in chunk])
                except Exception as exc:  # e.g. out of memory: fail these items, keep going
                    self._call_stats.add(calls=len(chunk), failures=len(chunk))
                    for key, _ in chunk:
                        results[key] = ChatResult(
                            error=f"local generation failed: {type(exc).__name__}: {exc}"
                        )
                    continue
                for (key, request), answer in zip(chunk, answers, strict=True):
                    results[key] = self._store(cache, key, request, answer, batch=False)
        return results

    def _generate(self, model: Any, tokenizer: Any, device: str, requests: list[ChatRequest]) -> list[Answer]:
        import torch

        first = requests[0]  # every request in a chunk shares these settings
        prompts = [
            tokenizer.apply_chat_template(list(r.cache_payload()), tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        n = max(1, first.n)
        options: dict[str, Any] = {
            "max_new_tokens": first.max_tokens,
            "num_return_sequences": n,
            "pad_token_id": tokenizer.pad_token_id,
            "do_sample": first.temperature > 0,
        }
        if first.temperature > 0:
            options.update(temperature=first.temperature, top_p=first.top_p)
        if first.stop:
            options.update(stop_strings=list(first.stop), tokenizer=tokenizer)
        if first.seed is not None:
            torch.manual_seed(first.seed)
        with torch.inference_mode():
            output = model.generate(**encoded, **options)
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        eos_ids = model.generation_config.eos_token_id
        eos = set(eos_ids if isinstance(eos_ids, list) else [eos_ids] if eos_ids is not None else [])
        eos.discard(None)
        answers = []
        for row, request in enumerate(requests):
            texts, reasons, produced = [], [], 0
            for sample in range(n):
                ids = new_tokens[row * n + sample].tolist()
                cut = next((i for i, t in enumerate(ids) if t in eos), None)
                kept = ids if cut is None else ids[:cut]
                text = tokenizer.decode(kept, skip_special_tokens=True)
                stopped = cut is not None
                for stop in request.stop:
                    if stop in text:
                        text, stopped = text[: text.index(stop)], True
                texts.append(text)
                reasons.append("stop" if stopped or len(kept) < first.max_tokens else "length")
                produced += len(kept)
            answers.append(
                Answer(
                    texts=texts,
                    finish_reasons=reasons,
                    input_tokens=int(encoded["attention_mask"][row].sum()),
                    output_tokens=produced,
                    model=self.model,
                )
            )
        return answers

    def teardown_after_execution(self, context: Any) -> None:
        self._loaded = None  # free the weights (and GPU memory) when the run's step ends
