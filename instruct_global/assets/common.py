"""Small helpers shared by asset bodies: metadata for rejects, call accounting."""

from collections import Counter
from collections.abc import Mapping

import pandas as pd
from dagster import MetadataValue

from instruct_global.lib.common.accounting import CallStats
from instruct_global.lib.common.report import markdown_counts, markdown_preview


def drop_metadata(reasons: Mapping[str, int], prefix: str = "dropped") -> dict[str, object]:
    """Counts per reason as numbers (for plots over time) and as one Markdown table."""
    meta: dict[str, object] = {f"{prefix}/{reason}": int(count) for reason, count in reasons.items() if count}
    meta[f"{prefix}_by_reason"] = MetadataValue.md(markdown_counts(dict(reasons)))
    meta[f"{prefix}_total"] = int(sum(reasons.values()))
    return meta


def call_metadata(stats: CallStats, prefix: str) -> dict[str, object]:
    return {f"{prefix}/{k}": v for k, v in stats.as_metadata().items()}


def rejects_metadata(rejects: pd.DataFrame, columns: list[str]) -> dict[str, object]:
    reasons = Counter(rejects["reason"].astype(str)) if not rejects.empty else Counter()
    return {
        "rejects": len(rejects),
        "preview": MetadataValue.md(markdown_preview(rejects, [*columns, "reason"])),
        "by_reason": MetadataValue.md(markdown_counts(dict(reasons))),
    }
