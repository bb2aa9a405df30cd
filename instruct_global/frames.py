"""dagster-pandas frame types for the data contracts (docs/ARCHITECTURE.md, "Data contracts").

An asset whose output lacks a contract column, or holds the wrong type in it, fails at the
boundary with the column named, before anything is written.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pyarrow.parquet as pq
from dagster import BetaWarning, DagsterType, TypeCheck
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type

from instruct_global.lib.common.frame_stream import StagedParquet

# dagster-pandas marks its column and frame types as beta; the warnings would print on every CLI start
warnings.filterwarnings("ignore", category=BetaWarning, module="dagster_pandas")
warnings.filterwarnings("ignore", category=BetaWarning, module=__name__)


def _strings(*names: str, non_nullable: bool = True) -> list[PandasColumn]:
    return [PandasColumn.string_column(n, non_nullable=non_nullable) for n in names]


_DOCUMENT_COLUMNS = [
    *_strings("doc_id", "lang", "source", "url", "text", "license", "retrieved_at"),
    PandasColumn.string_column("title", non_nullable=False),
]

DocumentsFrame = create_dagster_pandas_dataframe_type(
    name="DocumentsFrame",
    description="Documents: doc_id, lang, source, url, title, text, license, retrieved_at.",
    columns=_DOCUMENT_COLUMNS,
)

CleanDocumentsFrame = create_dagster_pandas_dataframe_type(
    name="CleanDocumentsFrame",
    description="Clean chunks: the document columns plus chunk_id, n_tokens, lid_lang, lid_score.",
    columns=[
        *_DOCUMENT_COLUMNS,
        PandasColumn.string_column("chunk_id", non_nullable=True, unique=True),
        PandasColumn.integer_column("n_tokens", non_nullable=True, min_value=1),
        PandasColumn.string_column("lid_lang", non_nullable=True),
        PandasColumn.float_column("lid_score", non_nullable=True, min_value=0.0, max_value=1.0),
    ],
)

SourceRecordsFrame = create_dagster_pandas_dataframe_type(
    name="SourceRecordsFrame",
    description="Rows of the user's labelled datasets with their variables by name.",
    columns=[
        *_strings("record_id", "dataset", "category", "variables"),
        PandasColumn.string_column("description", non_nullable=False),
        PandasColumn.integer_column("row_number", non_nullable=True, min_value=1),
    ],
)

RejectsFrame = create_dagster_pandas_dataframe_type(
    name="RejectsFrame",
    description="Rows a filter dropped, as they were, plus the reason.",
    columns=[PandasColumn.string_column("reason", non_nullable=True)],
)

EnglishInstructionsFrame = create_dagster_pandas_dataframe_type(
    name="EnglishInstructionsFrame",
    description="English instructions or templates: instruction_id, category, *_en fields, origin, dataset.",
    columns=[
        PandasColumn.string_column("instruction_id", non_nullable=True, unique=True),
        *_strings("category", "instruction_en", "input_en", "output_en", "origin", "dataset"),
        PandasColumn.float_column("max_rouge_l", ignore_missing_vals=True, min_value=0.0, max_value=1.0),
    ],
)

TargetRowsFrame = create_dagster_pandas_dataframe_type(
    name="TargetRowsFrame",
    description="Target-language rows with the English they came from, provenance ids, checks and review status.",
    columns=[
        PandasColumn.string_column("id", non_nullable=True, unique=True),
        *_strings("lang", "category", "instruction", "input", "output", "instruction_en", "input_en", "output_en",
                  "origin", "instruction_id", "checks", "review_status"),
    ],
)

InstructionDatasetFrame = create_dagster_pandas_dataframe_type(
    name="InstructionDatasetFrame",
    description="The final instruction dataset (the contract with the export stage): stable unique id, "
    "target-language fields, origin, provenance, licence, models, curation score, review status.",
    columns=[
        PandasColumn.string_column("id", non_nullable=True, unique=True),
        *_strings("lang", "category", "instruction", "output", "license"),
        PandasColumn.categorical_column("origin", categories={"template", "self_instruct", "backtranslation"},
                                        non_nullable=True),
        *_strings("input", "instruction_lang", "instruction_en", "input_en", "output_en", "dataset", "record_id",
                  "instruction_id", "doc_id", "chunk_id", "source", "source_url", "generator", "translator",
                  "judge", "checks", "review_status"),
        PandasColumn.float_column("curation_score", ignore_missing_vals=True, min_value=1.0, max_value=5.0),
    ],
)

SFTDatasetFrame = create_dagster_pandas_dataframe_type(
    name="SFTDatasetFrame",
    description="Exported examples: id, split (train/validation/test), messages (OpenAI chat JSON) and provenance.",
    columns=[
        PandasColumn.string_column("id", non_nullable=True, unique=True),
        PandasColumn.categorical_column("split", categories={"train", "validation", "test"}, non_nullable=True),
        *_strings("lang", "category", "instruction", "input", "output", "messages", "dup_group"),
    ],
)

TruthfulQAFrame = create_dagster_pandas_dataframe_type(
    name="TruthfulQAFrame",
    description="TruthfulQA questions (translated or English): qid, question, MC1/MC2 choices and labels as JSON.",
    columns=[
        PandasColumn.string_column("qid", non_nullable=True, unique=True),
        *_strings("question", "mc1_choices", "mc1_labels", "mc2_choices", "mc2_labels"),
    ],
)

ModelScoresFrame = create_dagster_pandas_dataframe_type(
    name="ModelScoresFrame",
    description="Base against fine-tuned: one row per measure with both scores and the difference.",
    columns=[
        PandasColumn.string_column("measure", non_nullable=True, unique=True),
        PandasColumn.float_column("base", ignore_missing_vals=True),
        PandasColumn.float_column("finetuned", ignore_missing_vals=True),
        PandasColumn.float_column("difference", ignore_missing_vals=True),
        PandasColumn.boolean_column("finetuned_worse", non_nullable=True),
    ],
)

HumanEvalPairsFrame = create_dagster_pandas_dataframe_type(
    name="HumanEvalPairsFrame",
    description="One row per prompt of the blind evaluation: both answers, which one is shown as A, the pair "
    "hash that binds verdicts to what the reviewer read. Server-side: the sheet shows only A and B.",
    columns=[
        PandasColumn.string_column("id", non_nullable=True, unique=True),
        *_strings("lang", "source", "prompt", "messages", "pair_hash"),
        *_strings("base_answer", "finetuned_answer", "answer_a", "answer_b"),
        PandasColumn.boolean_column("finetuned_is_a", non_nullable=True),
    ],
)

HumanEvalScoresFrame = create_dagster_pandas_dataframe_type(
    name="HumanEvalScoresFrame",
    description="Win / tie / loss of fine-tuned against base per language from blind human verdicts.",
    columns=[
        PandasColumn.string_column("lang", non_nullable=True, unique=True),
        *[PandasColumn.integer_column(c, non_nullable=True)
          for c in ("judged_rows", "judgments", "wins", "ties", "both_bad", "losses", "kappa_rows", "reviewers")],
        *[PandasColumn.float_column(c, ignore_missing_vals=True)
          for c in ("win_rate", "ci_low", "ci_high", "sign_test_p", "kappa")],
        PandasColumn.boolean_column("loses_significantly", non_nullable=True),
    ],
)


STAGED_CHECK_BATCH_ROWS = 4096


def frame_or_staged_parquet(frame_type: DagsterType) -> DagsterType:
    """``frame_type``, also for an output written in batches (``StagedParquet``): the staged file is
    checked a batch at a time (bounded memory) with the same column rules, so a bad row still fails
    at the boundary, before the file is moved into place; a file that fails is deleted. Uniqueness
    rules hold within each batch of ``STAGED_CHECK_BATCH_ROWS`` rows."""

    def check(context, value) -> TypeCheck:
        if isinstance(value, pd.DataFrame):
            return frame_type.type_check(context, value)
        if not isinstance(value, StagedParquet):
            return TypeCheck(False, description=f"expected a DataFrame or a StagedParquet, got {type(value)}")
        start = 0
        for batch in pq.ParquetFile(value.path).iter_batches(batch_size=STAGED_CHECK_BATCH_ROWS):
            frame = batch.to_pandas()
            outcome = frame_type.type_check(context, frame)
            if not outcome.success:
                value.path.unlink(missing_ok=True)  # never moved into place: nothing else would remove it
                return TypeCheck(False, description=f"rows {start}-{start + len(frame) - 1} of the staged "
                                 f"{value.target.name}: {outcome.description}", metadata=outcome.metadata)  # fmt: skip
            start += len(frame)
        return TypeCheck(True, metadata={"row_count": value.rows})

    return DagsterType(type_check_fn=check, name=f"{frame_type.unique_name}OrStaged",
                       description=f"{frame_type.description} (in memory, or written in batches)")  # fmt: skip


DocumentsOutput = frame_or_staged_parquet(DocumentsFrame)
CleanDocumentsOutput = frame_or_staged_parquet(CleanDocumentsFrame)
RejectsOutput = frame_or_staged_parquet(RejectsFrame)
