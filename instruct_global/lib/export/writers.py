"""Write the splits as OpenAI chat JSONL, Alpaca JSON, Parquet and a Hugging Face datasets folder.

Every file is written atomically; the datasets folder is saved beside its final place and then
renamed over it, so a reader sees the old folder or the new one, never half of one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from instruct_global.lib.common.atomic import atomic_write
from instruct_global.lib.export.splits import SPLITS


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    atomic_write(path, lambda handle: handle.write(body))


def write_json(path: Path, value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")
    atomic_write(path, lambda handle: handle.write(body))


def hf_split_frames(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per split: messages (a list of role/content dicts) plus the provenance columns."""
    out = {}
    for split in SPLITS:
        part = frame[frame["split"] == split].copy()
        part["messages"] = [json.loads(m) for m in part["messages"]]
        out[split] = part.drop(columns=["split"]).reset_index(drop=True)
    return out


def build_dataset_dict(frame: pd.DataFrame) -> Any:
    from datasets import Dataset, DatasetDict

    return DatasetDict(
        {
            split: Dataset.from_pandas(part, preserve_index=False)
            for split, part in hf_split_frames(frame).items()
        }
    )


def save_hf_folder(frame: pd.DataFrame, folder: Path) -> None:
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    build_dataset_dict(frame).save_to_disk(str(staging))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def write_all_formats(frame: pd.DataFrame, out_dir: Path, card: str) -> dict[str, str]:
    """Every format for every split under ``out_dir``; returns name -> path."""
    paths: dict[str, str] = {}
    for split in SPLITS:
        part = frame[frame["split"] == split]
        chat = out_dir / f"{split}.chat.jsonl"
        write_jsonl(chat, [{"messages": json.loads(m)} for m in part["messages"]])
        alpaca = out_dir / f"{split}.alpaca.json"
        write_json(
            alpaca,
            [
                {"instruction": i, "input": x, "output": o}
                for i, x, o in zip(part["instruction"], part["input"], part["output"], strict=True)
            ],
        )
        parquet = out_dir / f"{split}.parquet"
        atomic_write(parquet, lambda handle, part=part: part.to_parquet(handle, index=False))
        paths.update(
            {
                f"{split}_chat_jsonl": str(chat),
                f"{split}_alpaca": str(alpaca),
                f"{split}_parquet": str(parquet),
            }
        )
    hf = out_dir / "hf_dataset"
    save_hf_folder(frame, hf)
    paths["hf_dataset"] = str(hf)
    readme = out_dir / "README.md"
    atomic_write(readme, lambda handle: handle.write(card.encode("utf-8")))
    paths["card"] = str(readme)
    return paths


def dataset_card(lang_key: str, lang_name: str, counts: Mapping[str, int], licenses: list[str]) -> str:
    """A Hugging Face dataset card with its YAML header."""
    lic = licenses[0].lower() if len(licenses) == 1 else "other"
    lines = [
        "---",
        f"language:\n- {lang_key}",
        f"license: {lic}",
        "task_categories:\n- text-generation",
        "tags:\n- instruction-tuning\n- low-resource",
        "configs:\n- config_name: default\n  data_files:",
        *[f"  - split: {s}\n    path: data/{s}-*" for s in SPLITS],
        "---",
        "",
        f"# Instruction fine-tuning data in {lang_name}",
        "",
        "Built by instruct-global from reviewed template rows, translated self-instruct rows and",
        "backtranslated pairs. Splits hold no near-duplicate across them.",
        "",
        "| split | examples |",
        "|---|---:|",
        *[f"| {s} | {counts.get(s, 0)} |" for s in SPLITS],
        "",
        f"Licences of the rows: {', '.join(licenses) or 'unknown'}.",
        "",
    ]
    return "\n".join(lines)


class PushToHubError(RuntimeError):
    pass


def push_to_hub(frame: pd.DataFrame, repo_id: str, token: str, card: str, *, private: bool = True) -> str:
    """Upload the splits and the card; errors carry the hub's message, never the token."""
    from huggingface_hub import HfApi

    try:
        build_dataset_dict(frame).push_to_hub(repo_id, token=token, private=private)
        HfApi(token=token).upload_file(
            path_or_fileobj=card.encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
        )
    except Exception as exc:
        message = str(exc).replace(token, "***") if token else str(exc)
        raise PushToHubError(
            f"push_to_hub to {repo_id} failed: {type(exc).__name__}: {message[:400]}"
        ) from None
    return f"https://huggingface.co/datasets/{repo_id}"
