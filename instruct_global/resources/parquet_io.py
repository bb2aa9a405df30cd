"""Partitioned Parquet IO manager: ``<data dir>/<asset>/<partition>.parquet``, written atomically.

Stages whose partitions can be large stream instead of holding whole frames: an input declared
with ``AssetIn(metadata=ROW_SOURCE)`` arrives as a ``ParquetSource`` (read in batches), and an
output may be a ``StagedParquet`` the asset wrote beside ``partition_path(...)`` (moved into place
here, atomically).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from dagster import AssetKey, ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field

from instruct_global.lib.common.atomic import atomic_write, commit_file
from instruct_global.lib.common.frame_stream import ParquetSource, StagedParquet

DATA_DIR_ENV = "INSTRUCT_GLOBAL_DATA_DIR"
DEFAULT_DATA_DIR = "instruct_global_data"
_LOAD_AS = "instruct_global/load_as"
ROW_SOURCE = {_LOAD_AS: "row_source"}  # AssetIn metadata: give me a ParquetSource


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

    def partition_path(self, asset_key: AssetKey, partition: str | None) -> Path:
        return resolve_data_dir(self.data_dir).joinpath(*asset_key.path) / f"{partition or 'all'}.parquet"

    def _path(self, context: OutputContext | InputContext) -> Path:
        return self.partition_path(context.asset_key, context.asset_partition_key if context.has_asset_partitions else None)

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | StagedParquet) -> None:
        path = self._path(context)
        if isinstance(obj, StagedParquet):
            if obj.target != path:
                raise ValueError(f"{context.asset_key.to_user_string()} staged a file for {obj.target}, not {path}")
            commit_file(obj.path, path)
            rows = obj.rows
        elif isinstance(obj, pd.DataFrame):
            write_parquet_atomic(obj, path)
            rows = len(obj)
        else:
            raise TypeError(f"{context.asset_key.to_user_string()} must return a pandas DataFrame, got {type(obj)}")
        context.add_output_metadata({"row_count": rows, "path": MetadataValue.path(str(path))})

    def load_input(self, context: InputContext) -> pd.DataFrame | ParquetSource:
        path = self._path(context)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: materialise {context.asset_key.to_user_string()} "
                f"for partition {context.asset_partition_key if context.has_asset_partitions else 'all'} first"
            )
        if (context.definition_metadata or {}).get(_LOAD_AS) == ROW_SOURCE[_LOAD_AS]:
            return ParquetSource([path])
        return pd.read_parquet(path)
