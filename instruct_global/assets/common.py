"""Small helpers shared by asset bodies: metadata for rejects, call accounting, step retries."""

import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
from dagster import AssetKey, Backoff, Failure, Jitter, MetadataValue, RetryPolicy

from instruct_global.lib.common.accounting import CallStats
from instruct_global.lib.common.atomic import atomic_write
from instruct_global.lib.common.frame_stream import ParquetSink
from instruct_global.lib.common.plots import with_chart
from instruct_global.lib.common.preflight import PreflightError
from instruct_global.lib.common.report import markdown_counts, markdown_preview, png_markdown
from instruct_global.resources.parquet_io import PartitionedParquetIOManager, resolve_data_dir


def drop_metadata(reasons: Mapping[str, int], prefix: str = "dropped") -> dict[str, object]:
    """Counts per reason as numbers (for plots over time) and as one Markdown table."""
    meta: dict[str, object] = {f"{prefix}/{reason}": int(count) for reason, count in reasons.items() if count}
    drawn = {reason: int(count) for reason, count in reasons.items() if count}
    meta[f"{prefix}_by_reason"] = MetadataValue.md(with_chart(drawn, prefix.replace("_", " ") + " by reason", "reason",
                                                              markdown_counts(dict(reasons))))
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


def report_plot_metadata(png: bytes, lang_key: str, name: str, alt: str) -> dict[str, object]:
    """Keep a plot at ``<data dir>/reports/<lang>/<name>.png`` (atomically) and show it in the UI."""
    path = resolve_data_dir(None) / "reports" / lang_key / f"{name}.png"
    atomic_write(path, lambda handle: handle.write(png))
    return {"plot": MetadataValue.md(png_markdown(png, alt)),
            "plot_path": MetadataValue.path(str(path))}


def outside_service_retry(env: Mapping[str, str] = os.environ) -> RetryPolicy:
    """Step retries for stages that call outside services (sites, APIs, model hubs).

    The resources already retry each request with backoff; this re-runs the whole step after a longer
    outage (a provider down for minutes), from its caches: finished calls are never paid again.
    ``INSTRUCT_GLOBAL_STEP_RETRIES`` (default 2) and ``INSTRUCT_GLOBAL_STEP_RETRY_DELAY_S`` (default 60,
    doubled on each retry, with jitter), read when the definitions load.
    """
    retries = int(env.get("INSTRUCT_GLOBAL_STEP_RETRIES", "2") or 0)
    delay = float(env.get("INSTRUCT_GLOBAL_STEP_RETRY_DELAY_S", "60") or 0)
    return RetryPolicy(max_retries=retries, delay=delay, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


def call_snapshot(resource: object) -> dict[str, float]:
    """The resource's call counters now (LLM or translator), to compare after a stage."""
    return dict(resource.stats().as_dict())  # type: ignore[attr-defined]


def fail_if_every_call_failed(resource: object, before: Mapping[str, float], stage: str) -> None:
    """A stage whose every request failed (a revoked key, a server gone) fails: it must not succeed with
    nothing. Its answers so far are cached, so the retry pays only for what failed."""
    now = resource.stats().as_dict()  # type: ignore[attr-defined]
    sent, failed = now["calls"] - before["calls"], now["failures"] - before["failures"]
    if sent and failed >= sent and now["cache_hits"] == before["cache_hits"]:
        name = getattr(resource, "backend_name", type(resource).__name__)
        raise RuntimeError(
            f"{stage}: every one of the {sent} requests to the {name} backend failed (the rejects and the "
            "log give the errors); check its key, model name and server, then re-run"
        )


@contextmanager
def permanent_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Errors that a retry cannot fix (missing files, bad data, a model that is not there) fail the step
    at once, without the step retries meant for outages."""
    try:
        yield
    except kinds as exc:
        raise Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc


def require_ready(resource: object) -> None:
    """The resource's own check (model files, keys) before anything loads or pays; not retried."""
    with permanent_errors(PreflightError):
        resource.require_ready()  # type: ignore[attr-defined]


@contextmanager
def staged_partitions(
    io_manager: PartitionedParquetIOManager, partition: str, schemas: Mapping[str, pa.Schema]
) -> Iterator[dict[str, ParquetSink]]:
    """A sink per output asset, writing beside its partition file; on an error every staged file is
    removed, so the stored partitions stay as they were. Return ``sink.staged_file()`` as the output
    and the IO manager moves it into place."""
    sinks = {name: ParquetSink(io_manager.partition_path(AssetKey(name), partition), schema)
             for name, schema in schemas.items()}  # fmt: skip
    try:
        yield sinks
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
