"""Partitioned Parquet IO manager: ``<data dir>/<asset>/<partition>.parquet``, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field

from instruct_global.lib.common.atomic import atomic_write

DATA_DIR_ENV = "INSTRUCT_GLOBAL_DATA_DIR"
DEFAULT_DATA_DIR = "instruct_global_data"


def resolve_data_dir(configured: str | None) -> Path:
    """Configured value, else $INSTRUCT_GLOBAL_DATA_DIR, else ./instruct_global_data (read at run time)."""
    return Path(configured or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).resolve()


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda handle: frame.to_parquet(handle, index=False))


class PartitionedParquetIOManager(ConfigurableIOManager):
    data_dir: str | None = Field(
        default=None,
        description=f"Folder for asset outputs; default ${DATA_DIR_ENV} or ./{DEFAULT_DATA_DIR}",
    )

    def _path(self, context: OutputContext | InputContext) -> Path:
        key = context.asset_key.path
        partition = context.asset_partition_key if context.has_asset_partitions else "all"
        return resolve_data_dir(self.data_dir).joinpath(*key) / f"{partition}.parquet"

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} must return a pandas DataFrame, got {type(obj)}")
        path = self._path(context)
        write_parquet_atomic(obj, path)
        context.add_output_metadata(
            {"row_count": len(obj), "path": MetadataValue.path(str(path))}
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        path = self._path(context)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: materialise {context.asset_key.to_user_string()} "
                f"for partition {context.asset_partition_key if context.has_asset_partitions else 'all'} first"
            )
        return pd.read_parquet(path)
