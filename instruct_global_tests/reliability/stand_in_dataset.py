"""Stand-in for the curate stage's ``instruction_dataset``: the same name, partitions and columns."""
# No "from __future__ import annotations": Dagster reads the asset's annotations.

import pandas as pd
from dagster import AssetExecutionContext, asset

from instruct_global.partitions import language_partitions
from instruct_global_tests.fixtures.instruction_rows import contract_rows


@asset(partitions_def=language_partitions, group_name="curate")
def instruction_dataset(context: AssetExecutionContext) -> pd.DataFrame:
    return contract_rows(40, context.partition_key)
