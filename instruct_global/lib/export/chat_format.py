"""Rows of ``instruction_dataset`` as chat examples (OpenAI ``messages``) and Alpaca records.

The user turn is the instruction, followed by the input after a blank line when there is one;
the assistant turn is the output. A system message is added only when one is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

REQUIRED_COLUMNS = ("id", "lang", "category", "instruction", "input", "output")


class ExportInputError(ValueError):
    """A row of the instruction dataset cannot become a training example."""


def _text(row: Mapping[str, Any], field: str) -> str:
    value = row.get(field, "")
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def user_content(instruction: str, input_text: str) -> str:
    instruction, input_text = instruction.strip(), input_text.strip()
    return f"{instruction}\n\n{input_text}" if input_text else instruction


def row_messages(row: Mapping[str, Any], system_prompt: str = "") -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    messages.append({"role": "user", "content": user_content(_text(row, "instruction"), _text(row, "input"))})
    messages.append({"role": "assistant", "content": _text(row, "output").strip()})
    return messages


def alpaca_record(row: Mapping[str, Any]) -> dict[str, str]:
    return {
        "instruction": _text(row, "instruction").strip(),
        "input": _text(row, "input").strip(),
        "output": _text(row, "output").strip(),
    }


def validate_rows(frame: pd.DataFrame, source: str = "instruction_dataset") -> None:
    """Fail naming the row and field when a row cannot become an example."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ExportInputError(f"{source}: missing columns {missing}")
    for position, row in enumerate(frame.to_dict("records")):
        for field in ("instruction", "output"):
            if not _text(row, field).strip():
                raise ExportInputError(
                    f"{source}: row {position} (id {row.get('id')!r}) has an empty '{field}'"
                )
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        raise ExportInputError(f"{source}: duplicate ids {duplicated[:5]}")
