"""NLLB-200 translation through transformers (default) or CTranslate2.

GPU: bf16 by default. ``load_in_8bit`` (bitsandbytes, GPU only) roughly halves weight memory
but generates more slowly than bf16: use it only when the model would not fit otherwise.

CTranslate2 (``engine="ctranslate2"``, ``pip install instruct_global[ctranslate2]``) is faster,
especially on CPU. Convert the model once and point ``ct2_model_dir`` at the result:

    ct2-transformers-converter --model facebook/nllb-200-distilled-600M \
        --output_dir models/nllb-200-distilled-600M-ct2 --quantization int8_float16

The tokenizer is still read from ``model_name``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from instruct_global.languages import Language
from instruct_global.lib.common.preflight import Problem, hf_model_problem, hub_offline
from instruct_global.resources.translation import SegmentOutcome, TranslatorResource

DEFAULT_NLLB_MODEL = "facebook/nllb-200-distilled-600M"


class ModelNotAvailableError(RuntimeError):
    """The model (or its tokenizer) cannot be loaded here, typically offline without a local copy."""


@dataclass
class NLLBRuntime:
    """A loaded model: shared by every resource instance in the process with the same settings."""

    tokenizer: Any
    model: Any  # transformers model, or a ctranslate2.Translator
    engine: str
    device: str
    precision: str
    lock: threading.Lock


_RUNTIMES: dict[tuple[Any, ...], NLLBRuntime] = {}
_RUNTIMES_LOCK = threading.Lock()


class NLLBTranslator(TranslatorResource):
    """NLLB-200 (Meta's No Language Left Behind) run locally."""

    backend_name: ClassVar[str] = "nllb"

    model_name: str = Field(
        default=DEFAULT_NLLB_MODEL, description="Hub id or a local folder with the model and tokenizer."
    )
    revision: str | None = Field(default=None, description="Hub revision (commit, tag) to pin.")
    engine: Literal["transformers", "ctranslate2"] = "transformers"
    ct2_model_dir: str | None = Field(
        default=None, description="Folder made by ct2-transformers-converter (engine='ctranslate2')."
    )
    ct2_compute_type: str = Field(default="default", description="CTranslate2 compute_type, e.g. int8.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    load_in_8bit: bool = Field(
        default=False,
        description="bitsandbytes 8-bit weights (GPU only): saves memory, generates more slowly than bf16.",
    )
    num_beams: int = Field(default=4, ge=1)
    batch_size: int = Field(default=16, ge=1, description="Segments per generate call.")
    max_input_tokens: int = Field(
        default=512, ge=8, description="Longer segments fail instead of being silently truncated."
    )
    max_length_ratio: float = Field(
        default=2.0, gt=0, description="max_new_tokens = ratio x longest input in the batch + 10."
    )
    max_new_tokens: int = Field(
        default=512,
        ge=1,
        description="Absolute cap on generated tokens. An output that reaches the budget (this or the "
        "ratio's) without ending is a cut-off translation: its segment fails, nothing is cached.",
    )

    # ---- TranslatorResource hooks --------------------------------------------------------------
    def supports(self, lang: Language) -> bool:
        return lang.nllb_code is not None

    def _language_code(self, lang: Language) -> str:
        return lang.require("nllb_code", "NLLB-200")

    def _english_code(self) -> str:
        return "eng_Latn"

    def model_id(self) -> str:
        return f"{self.model_name}@{self.revision}" if self.revision else self.model_name

    def cache_params(self) -> dict[str, Any]:
        device = self._resolved_device()
        params: dict[str, Any] = {
            "engine": self.engine,
            "precision": self._precision(device),
            "num_beams": self.num_beams,
            "max_length_ratio": self.max_length_ratio,
            "max_new_tokens": self.max_new_tokens,
        }
        if self.engine == "ctranslate2":
            # the converted weights are read from ct2_model_dir, not model_name (the tokenizer's
            # source), and compute_type "default"/int8_float16 resolve differently on CPU and GPU
            params["ct2_model_dir"] = self.ct2_model_dir
            params["device"] = device
        return params

    def _translate_uncached(
        self, segments: list[str], source_code: str, target_code: str
    ) -> Iterator[Mapping[int, SegmentOutcome]]:
        runtime = self.load()
        tokenizer = runtime.tokenizer
        target_id = tokenizer.convert_tokens_to_ids(target_code)
        if target_id is None or target_id == tokenizer.unk_token_id:
            raise ModelNotAvailableError(
                f"the tokenizer of {self.model_name} has no language code {target_code}"
            )
        with runtime.lock:  # the tokenizer's source language is shared state
            tokenizer.src_lang = source_code
            encoded = tokenizer(segments, add_special_tokens=True)["input_ids"]
            too_long = {
                i: SegmentOutcome(
                    error=f"segment has {len(ids)} tokens, over max_input_tokens={self.max_input_tokens}"
                )
                for i, ids in enumerate(encoded)
                if len(ids) > self.max_input_tokens
            }
            if too_long:
                yield too_long
            # length buckets: similar lengths share a batch, so little compute goes to padding
            order = sorted(
                (i for i in range(len(segments)) if i not in too_long), key=lambda i: -len(encoded[i])
            )
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                yield from self._run_batch(runtime, batch, encoded, target_code, target_id)

    def preflight_problems(self) -> list[Problem]:
        fix = (
            f"on a machine with network run `hf download {self.model_name}` and copy the Hugging Face cache "
            "(HF_HOME), or set INSTRUCT_GLOBAL_NLLB_MODEL to a local folder holding the model and tokenizer; "
            "or use Google: INSTRUCT_GLOBAL_TRANSLATOR=google with GOOGLE_CLOUD_PROJECT"
        )
        problem = hf_model_problem(
            self.model_name, f"NLLB translation model {self.model_name!r}", fix,
            offline=hub_offline(), revision=self.revision,
        )  # fmt: skip
        problems = [problem] if problem else []
        if self.engine == "ctranslate2" and not (self.ct2_model_dir and os.path.isdir(self.ct2_model_dir)):
            problems.append(Problem(
                f"engine='ctranslate2' needs ct2_model_dir, a converted model folder (now {self.ct2_model_dir!r})",
                f"ct2-transformers-converter --model {self.model_name} --output_dir <folder>, then set ct2_model_dir",
            ))  # fmt: skip
        return problems

    # ---- loading -------------------------------------------------------------------------------
    def load(self) -> NLLBRuntime:
        """Load model and tokenizer once per process (per settings) and return them."""
        device = self._resolved_device()
        key = (self.engine, self.model_name, self.revision, self.ct2_model_dir, self.ct2_compute_type, device,
               self._precision(device))  # fmt: skip
        with _RUNTIMES_LOCK:
            runtime = _RUNTIMES.get(key)
            if runtime is None:
                runtime = self._load(device)
                _RUNTIMES[key] = runtime
            return runtime

    def _resolved_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("NLLBTranslator device='cuda' but torch.cuda.is_available() is False here")
        return self.device

    def _precision(self, device: str) -> str:
        if self.engine == "ctranslate2":
            return f"ct2-{self.ct2_compute_type}"
        if self.load_in_8bit:
            return "int8"
        return "bf16" if device == "cuda" else "fp32"

    def _load(self, device: str) -> NLLBRuntime:
        if self.load_in_8bit and device != "cuda":
            # bitsandbytes imports on CPU and accepts the flag there, then fails obscurely later
            raise RuntimeError(
                "load_in_8bit=True needs a CUDA GPU (bitsandbytes 8-bit); this machine has none. "
                "Set load_in_8bit=False to run on CPU, or use engine='ctranslate2' with ct2_compute_type='int8'."
            )
        if self.load_in_8bit and self.engine == "ctranslate2":
            raise RuntimeError(
                "load_in_8bit applies to engine='transformers'; for CTranslate2 set ct2_compute_type"
            )
        tokenizer = self._from_pretrained("AutoTokenizer")
        if self.engine == "ctranslate2":
            model = self._load_ctranslate2(device)
        else:
            model = self._load_transformers(device)
        return NLLBRuntime(tokenizer, model, self.engine, device, self._precision(device), threading.Lock())

    def _load_transformers(self, device: str) -> Any:
        import torch

        kwargs: dict[str, Any] = {}
        if self.load_in_8bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
            kwargs["device_map"] = {"": 0}
        elif device == "cuda":
            kwargs["dtype"] = torch.bfloat16
        model = self._from_pretrained("AutoModelForSeq2SeqLM", **kwargs)
        if not self.load_in_8bit:
            model = model.to(device)
        return model.eval()

    def _load_ctranslate2(self, device: str) -> Any:
        if not self.ct2_model_dir:
            raise ModelNotAvailableError(
                "engine='ctranslate2' needs ct2_model_dir, a converted model. Convert once with: "
                f"ct2-transformers-converter --model {self.model_name} --output_dir <folder>"
            )
        try:
            import ctranslate2
        except ImportError as exc:
            raise ModelNotAvailableError(
                "engine='ctranslate2' needs the ctranslate2 package: pip install 'instruct_global[ctranslate2]'"
            ) from exc
        try:
            return ctranslate2.Translator(
                self.ct2_model_dir, device=device, compute_type=self.ct2_compute_type
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelNotAvailableError(
                f"cannot load the CTranslate2 model in {self.ct2_model_dir} ({type(exc).__name__}: {exc}). "
                f"Convert it with: ct2-transformers-converter --model {self.model_name} --output_dir {self.ct2_model_dir}"
            ) from exc

    def _from_pretrained(self, class_name: str, **kwargs: Any) -> Any:
        import transformers

        cls = getattr(transformers, class_name)
        # offline (HF_HUB_OFFLINE, or the hub unreachable): local files only, no minutes of retries
        kwargs.setdefault("local_files_only", hub_offline())
        try:
            return cls.from_pretrained(self.model_name, revision=self.revision, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"NLLB model '{self.model_name}' is not available locally and could not be downloaded "
                f"({type(exc).__name__}). On a machine with network run "
                f"`huggingface-cli download {self.model_name}` (or `hf download ...`; it lands in the Hugging Face cache; copy "
                f"that cache or set HF_HOME here), or set model_name to a local folder that holds the model "
                f"and tokenizer (save_pretrained output)."
            ) from exc

    # ---- generation ----------------------------------------------------------------------------
    def _new_token_budget(self, longest_input: int) -> int:
        return min(self.max_new_tokens, math.ceil(longest_input * self.max_length_ratio) + 10)

    def _run_batch(
        self,
        runtime: NLLBRuntime,
        batch: list[int],
        encoded: list[list[int]],
        target_code: str,
        target_id: int,
    ) -> Iterator[dict[int, SegmentOutcome]]:
        budget = self._new_token_budget(max(len(encoded[i]) for i in batch))
        try:
            if runtime.engine == "ctranslate2":
                outputs = self._generate_ct2(runtime, [encoded[i] for i in batch], target_code, budget)
            else:
                outputs = self._generate_transformers(runtime, [encoded[i] for i in batch], target_id, budget)
        except Exception as exc:
            if _is_out_of_memory(exc) and len(batch) > 1:
                # a batch too large for the GPU: halve it rather than fail its segments
                _free_gpu_memory()
                half = len(batch) // 2
                yield from self._run_batch(runtime, batch[:half], encoded, target_code, target_id)
                yield from self._run_batch(runtime, batch[half:], encoded, target_code, target_id)
                return
            message = f"NLLB generation failed: {type(exc).__name__}: {str(exc)[:300]}"
            yield {i: SegmentOutcome(error=message) for i in batch}
            return
        outcomes: dict[int, SegmentOutcome] = {}
        for i, (text, ended) in zip(batch, outputs, strict=True):
            text = text.strip()
            if not ended:
                # the model ran out of tokens mid-sentence: the text is a truncated translation
                outcomes[i] = SegmentOutcome(
                    error=f"translation cut off at {budget} new tokens (no end of sequence); raise "
                    f"max_new_tokens ({self.max_new_tokens}) / max_length_ratio ({self.max_length_ratio})"
                )
            elif not text:
                outcomes[i] = SegmentOutcome(error="the model produced an empty translation")
            else:
                outcomes[i] = SegmentOutcome(text=text)
        yield outcomes

    def _generate_transformers(
        self, runtime: NLLBRuntime, inputs: list[list[int]], target_id: int, budget: int
    ) -> list[tuple[str, bool]]:
        """``(text, ended)`` per input; ``ended`` is False where generation stopped at ``budget``."""
        import torch

        tokenizer, model = runtime.tokenizer, runtime.model
        padded = tokenizer.pad({"input_ids": inputs}, padding=True, return_tensors="pt")
        padded = {k: v.to(model.device) for k, v in padded.items()}
        with torch.inference_mode():
            output = model.generate(
                **padded,
                forced_bos_token_id=target_id,
                num_beams=self.num_beams,
                max_new_tokens=budget,
                do_sample=False,
            )
        self._call_stats.add(
            calls=1,
            input_tokens=sum(len(ids) for ids in inputs),
            output_tokens=int((output != tokenizer.pad_token_id).sum().item()),
        )
        # each row is the decoder start token (</s> in NLLB), the forced language code, the
        # translation, then </s> if the model ended it, then padding where other rows ran longer
        eos_ids = _eos_ids(model, tokenizer)
        generated = output[:, 1:].tolist()
        ended = [any(token in eos_ids for token in row) for row in generated]
        texts = tokenizer.batch_decode(output, skip_special_tokens=True)
        return list(zip(texts, ended, strict=True))

    def _generate_ct2(
        self, runtime: NLLBRuntime, inputs: list[list[int]], target_code: str, budget: int
    ) -> list[tuple[str, bool]]:
        """``(text, ended)`` per input; ``ended`` is False where decoding stopped at ``budget``."""
        tokenizer = runtime.tokenizer
        source_tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in inputs]
        results = runtime.model.translate_batch(
            source_tokens,
            target_prefix=[[target_code]] * len(inputs),
            beam_size=self.num_beams,
            max_batch_size=self.batch_size,
            max_decoding_length=budget,
            return_end_token=True,  # a hypothesis without it was cut off at max_decoding_length
        )
        end_token = tokenizer.eos_token
        outputs: list[tuple[str, bool]] = []
        output_tokens = 0
        for result in results:
            tokens = result.hypotheses[0]
            if tokens and tokens[0] == target_code:
                tokens = tokens[1:]
            ended = bool(tokens) and tokens[-1] == end_token
            if ended:
                tokens = tokens[:-1]
            output_tokens += len(tokens)
            text = tokenizer.decode(tokenizer.convert_tokens_to_ids(tokens), skip_special_tokens=True)
            outputs.append((text, ended))
        self._call_stats.add(
            calls=1, input_tokens=sum(len(ids) for ids in inputs), output_tokens=output_tokens
        )
        return outputs


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The ids that end generation: the generation config's (an int or a list), else the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    return {int(i) for i in (configured if isinstance(configured, (list, tuple)) else [configured])}


def _is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _free_gpu_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


__all__ = ["DEFAULT_NLLB_MODEL", "ModelNotAvailableError", "NLLBRuntime", "NLLBTranslator"]
