from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, Definitions, StaticPartitionsDefinition, asset, materialize

from instruct_global.resources.parquet_io import PartitionedParquetIOManager, write_parquet_atomic

parts = StaticPartitionsDefinition(["yor", "hau"])


@asset(partitions_def=parts)
def numbers(context) -> pd.DataFrame:
    return pd.DataFrame({"lang": [context.partition_key] * 3, "n": [1, 2, 3]})


@asset(partitions_def=parts)
def doubled(numbers: pd.DataFrame) -> pd.DataFrame:
    return numbers.assign(n=numbers["n"] * 2)


def test_partitioned_layout_metadata_and_roundtrip(tmp_path: Path) -> None:
    io = PartitionedParquetIOManager(data_dir=str(tmp_path))
    result = materialize([numbers, doubled], partition_key="hau", resources={"io_manager": io})
    assert result.success
    out = pd.read_parquet(tmp_path / "doubled" / "hau.parquet")
    assert out["n"].tolist() == [2, 4, 6] and set(out["lang"]) == {"hau"}
    assert not (tmp_path / "doubled" / "yor.parquet").exists()
    meta = result.asset_materializations_for_node("doubled")[0].metadata
    assert meta["row_count"].value == 3
    assert meta["path"].value == str(tmp_path / "doubled" / "hau.parquet")
    # no temp files are left beside the outputs
    assert sorted(p.name for p in (tmp_path / "numbers").iterdir()) == ["hau.parquet"]


def test_data_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTRUCT_GLOBAL_DATA_DIR", str(tmp_path / "env"))
    assert materialize([numbers], partition_key="yor", resources={"io_manager": PartitionedParquetIOManager()}).success
    assert (tmp_path / "env" / "numbers" / "yor.parquet").exists()


def test_missing_upstream_names_asset_and_partition(tmp_path: Path) -> None:
    io = PartitionedParquetIOManager(data_dir=str(tmp_path))
    defs = Definitions(assets=[numbers, doubled], resources={"io_manager": io})
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key="yor", asset_selection=[AssetKey("doubled")], raise_on_error=False
    )
    assert not result.success
    assert "materialise numbers for partition yor first" in str(result.all_events)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "a" / "x.parquet"
    write_parquet_atomic(pd.DataFrame({"v": [1]}), target)

    class Unwritable(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):  # type: ignore[override]
            args[0].write(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(Unwritable({"v": [2]}), target)
    assert pd.read_parquet(target)["v"].tolist() == [1]
    assert os.listdir(target.parent) == ["x.parquet"]
