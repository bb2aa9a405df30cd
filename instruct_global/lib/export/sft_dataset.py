"""From instruction rows to the exported frame: one row per example with its split and messages."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from instruct_global.lib.export.chat_format import row_messages, user_content, validate_rows
from instruct_global.lib.export.splits import SplitConfig, assign_splits, near_duplicate_groups

PROVENANCE = ["id", "lang", "category", "origin", "license"]


@dataclass
class ExportResult:
    frame: pd.DataFrame  # split, messages (JSON), instruction, input, output, provenance, dup_group
    n_groups: int
    largest_group: int


def build_export(
    rows: pd.DataFrame, *, system_prompt: str = "", split_config: SplitConfig = SplitConfig()
) -> ExportResult:
    validate_rows(rows)
    rows = rows.sort_values("id", kind="stable").reset_index(drop=True)
    records = rows.to_dict("records")
    texts = [
        user_content(str(r["instruction"]), str(r.get("input") or "")) + "\n" + str(r["output"])
        for r in records
    ]
    groups = near_duplicate_groups(texts, [str(r["output"]) for r in records], split_config)
    splits = assign_splits(rows["id"].astype(str).tolist(), groups, split_config)
    frame = pd.DataFrame(
        {
            **{c: rows[c].astype(str) if c in rows else "" for c in PROVENANCE},
            "instruction": rows["instruction"].astype(str).str.strip(),
            "input": rows["input"].fillna("").astype(str).str.strip(),
            "output": rows["output"].astype(str).str.strip(),
            "messages": [json.dumps(row_messages(r, system_prompt), ensure_ascii=False) for r in records],
            "split": splits,
            # the group is named by its smallest id (rows are sorted by id; a group's root is its first row)
            "dup_group": [str(rows["id"][g]) for g in groups],
        }
    )
    sizes = pd.Series(groups).value_counts()
    return ExportResult(frame, n_groups=int(sizes.size), largest_group=int(sizes.max()) if len(sizes) else 0)
