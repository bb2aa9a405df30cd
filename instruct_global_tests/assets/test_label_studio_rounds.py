"""Label Studio as the front end of the data review and the human evaluation, against a real server.

A Label Studio 1.23 server runs on loopback from its own virtualenv (fixtures/label_studio_server.py);
reviewers sign up through the invite link and annotate as the labeling UI does; ``label_studio_sensor``
pushes the outbox sheets as tasks (once each: re-pushing imports nothing) and pulls the annotations into
the very stores the sheets feed, through the runs it requests. Tier ``labelstudio`` (``make
test-labelstudio``), excluded by default: the first run builds the virtualenv (minutes).
"""

# No "from __future__ import annotations": Dagster reads the stand-in assets' annotations.

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
from dagster import AssetExecutionContext, RunRequest, SkipReason, asset, build_sensor_context, materialize

from instruct_global.assets.export import sft_dataset
from instruct_global.assets.human_eval import human_eval_scores, human_eval_sheet
from instruct_global.assets.train import finetuned_model
from instruct_global.assets.translate import review_sheet, reviewed_instructions
from instruct_global.lib.evaluate.human_eval import VerdictStore
from instruct_global.lib.evaluate.human_eval_stats import markdown_scores, wilson_interval
from instruct_global.lib.evaluate.label_studio import EVAL_KIND, REVIEW_KIND
from instruct_global.lib.evaluate.label_studio_api import LabelStudioClient, LabelStudioError
from instruct_global.lib.translate.review_sheet import ReviewStore, read_returned_sheet
from instruct_global.lib.translate.target_rows import TARGET_COLUMNS
from instruct_global.partitions import language_partitions
from instruct_global.resources.label_studio import LabelStudioResource
from instruct_global.resources.parquet_io import PartitionedParquetIOManager
from instruct_global.sensors import label_studio_sensor
from instruct_global_tests.assets.test_human_eval_assets import _config, _resources, instruction_dataset
from instruct_global_tests.fixtures.instruction_rows import contract_rows
from instruct_global_tests.fixtures.label_studio_server import (  # noqa: F401 (the fixture)
    LabelStudioServer,
    label_studio_server,
    report,
)
from instruct_global_tests.fixtures.tiny_causal_lm import build_tiny_causal_lm

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]


def _tick(server: LabelStudioServer, cursor: str | None) -> tuple[list[RunRequest] | SkipReason, str | None]:
    resource = LabelStudioResource(url=server.url, api_key=server.access_token)  # the default kind of key
    context = build_sensor_context(resources={"label_studio": resource}, cursor=cursor)
    result = label_studio_sensor(context)
    return (result if isinstance(result, SkipReason) else list(result)), context.cursor


def _project_tasks(server: LabelStudioServer, title: str) -> list[dict]:
    with server.admin() as admin:
        projects = admin.get("/api/projects/", params={"title": title}).json()["results"]
        assert [p["title"] for p in projects] == [title]
        answer = admin.get("/api/tasks/", params={"project": projects[0]["id"], "fields": "all", "page_size": 500})
        return answer.json()["tasks"]


def _choice(name: str, to_name: str, value: str) -> dict:
    return {"from_name": name, "to_name": to_name, "type": "choices", "value": {"choices": [value]}}


def _text(name: str, to_name: str, value: str) -> dict:
    return {"from_name": name, "to_name": to_name, "type": "textarea", "value": {"text": [value]}}


def test_evaluation_round_through_label_studio(label_studio_server: LabelStudioServer, tmp_path: Path,  # noqa: F811
                                               data_dir: Path, request: pytest.FixtureRequest) -> None:  # fmt: skip
    server = label_studio_server
    tiny_lm = build_tiny_causal_lm(tmp_path / "tiny_lm")
    bank = tmp_path / "bank.csv"
    bank.write_text("id,prompt\nq1,Kí ni orúkọ rẹ?\nq2,=1+1 ni?\nq3,- ṣé o wà?\n", "utf-8")
    resources = _resources(tmp_path)
    assets = [instruction_dataset, sft_dataset, finetuned_model, human_eval_sheet, human_eval_scores]
    assert materialize(assets[:4], partition_key="yor", resources=resources, run_config=_config(tiny_lm, bank)).success
    pairs = pd.read_parquet(data_dir / "human_eval_sheet" / "yor.parquet")
    n = len(pairs)

    # first tick: every row of the blind sheet becomes a task with its stable id; nothing to pull yet
    result, cursor = _tick(server, None)
    assert isinstance(result, SkipReason) and f"pushed {n} new task(s)" in result.skip_message
    tasks = _project_tasks(server, "instruct-global human_eval yor")
    assert sorted(t["data"]["stable_id"] for t in tasks) == sorted(pairs["id"])
    sheet = read_returned_sheet(data_dir / "human_eval" / "outbox" / "yor.csv")
    by_id = {t["data"]["stable_id"]: t for t in tasks}
    # the reviewer reads the same text as in the sheet, formulas restored (the "=1+1 ni?" prompt)
    assert "=1+1 ni?" in {t["data"]["prompt"] for t in tasks}
    assert not any("finetuned" in json.dumps(t["data"]) for t in tasks)  # still blind
    # a second tick imports nothing again
    again, cursor = _tick(server, cursor)
    assert isinstance(again, SkipReason) and "pushed 0 new task(s)" in again.skip_message
    assert len(_project_tasks(server, "instruct-global human_eval yor")) == n

    # two reviewers judge through the UI's calls: ada all rows (fine-tuned wins but for a loss and a tie),
    # bo four rows (win, tie, win, both_bad) and skips a fifth
    tuned_side = {r.id: ("A" if r.finetuned_is_a else "B") for r in pairs.itertuples()}
    other = {"A": "B", "B": "A"}
    order = list(sheet["id"])
    ada = server.sign_up_reviewer("ada@reviewers.test")
    bo = server.sign_up_reviewer("bo@reviewers.test")
    ada_annotations = {}
    for position, rid in enumerate(order):
        verdict = {0: other[tuned_side[rid]], 1: "tie"}.get(position, tuned_side[rid])
        result_items = [_choice("verdict", "prompt", verdict)]
        if position == 2:
            result_items.append(_text("note", "prompt", '=IMPORTXML("http://evil")'))
        ada_annotations[rid] = ada.annotate(by_id[rid]["id"], result_items)["id"]
    for rid, verdict in zip(order[:4], [tuned_side[order[0]], "tie", tuned_side[order[2]], "both_bad"], strict=True):
        bo.annotate(by_id[rid]["id"], [_choice("verdict", "prompt", verdict)])
    bo.skip(by_id[order[4]]["id"])

    # the next tick pulls them into a returned sheet and asks for the run that scores it
    requests, cursor = _tick(server, cursor)
    assert isinstance(requests, list) and len(requests) == 1
    run = requests[0]
    assert run.partition_key == "yor" and run.tags["instruct_global/label_studio_round"] == "human_eval"
    pulled = Path(run.run_config["ops"]["human_eval_scores"]["config"]["returned_sheet"])
    assert pulled.parent == data_dir / "human_eval" / "label_studio" and len(read_returned_sheet(pulled)) == n + 4
    scored = materialize(assets, partition_key="yor", resources=resources, run_config=run.run_config,
                         selection=["human_eval_scores"])  # fmt: skip
    assert scored.success and not pulled.exists()  # applied and archived, like a returned sheet
    row = pd.read_parquet(data_dir / "human_eval_scores" / "yor.parquet").iloc[0]
    # row 0: ada loss, bo win -> tie; row 1: tie, tie; row 2: both win; row 3: ada win, bo both_bad -> tie
    assert (row.judged_rows, row.wins, row.losses, row.ties, row.both_bad) == (n, n - 3, 0, 3, 0)
    assert (row.ci_low, row.ci_high) == pytest.approx(wilson_interval(n - 3, n - 3))
    assert row.kappa_rows == 4 and row.reviewers == 2
    assert row.kappa == pytest.approx((0.5 - 5 / 16) / (1 - 5 / 16))
    stored = VerdictStore(data_dir / "human_eval" / "store" / "yor.jsonl").load()
    assert len(stored) == n + 4 and {v.origin for v in stored.values()} == {"label_studio"}
    assert {v.reviewer for v in stored.values()} == {"ada@reviewers.test", "bo@reviewers.test"}
    assert stored[(order[2], "ada@reviewers.test")].note == '=IMPORTXML("http://evil")'
    table_md = scored.asset_materializations_for_node("human_eval_scores")[0].metadata["table"].value
    report(request.config, "\nhuman_eval_scores after Label Studio round 1 (ada and bo):\n" + table_md)

    # nothing new: no run; ada then changes her mind on row 0 (loss -> win): only that annotation comes
    idle, cursor = _tick(server, cursor)
    assert isinstance(idle, SkipReason) and "no new annotations" in idle.skip_message
    ada.update(ada_annotations[order[0]], [_choice("verdict", "prompt", tuned_side[order[0]])])
    requests, cursor = _tick(server, cursor)
    assert isinstance(requests, list) and len(requests) == 1
    assert len(read_returned_sheet(requests[0].run_config["ops"]["human_eval_scores"]["config"]["returned_sheet"])) == 1
    assert materialize(assets, partition_key="yor", resources=resources, run_config=requests[0].run_config,
                       selection=["human_eval_scores"]).success  # fmt: skip
    row = pd.read_parquet(data_dir / "human_eval_scores" / "yor.parquet").iloc[0]
    assert (row.wins, row.ties, row.losses) == (n - 2, 2, 0)
    report(request.config, "\nafter round 2 (ada changed one verdict from loss to win):\n" + markdown_of(data_dir))

    # a new sheet leaves the judged rows out; pushing it imports nothing (every row is known already)
    assert materialize(assets[:4], partition_key="yor", resources=resources, selection=["human_eval_sheet"],
                       run_config={"ops": {"human_eval_sheet": _config(tiny_lm, bank)["ops"]["human_eval_sheet"]}}
                       ).success  # fmt: skip
    assert len(read_returned_sheet(data_dir / "human_eval" / "outbox" / "yor.csv")) == 0
    idle, cursor = _tick(server, cursor)
    assert isinstance(idle, SkipReason) and "pushed 0 new task(s)" in idle.skip_message
    assert len(_project_tasks(server, "instruct-global human_eval yor")) == n


def markdown_of(data_dir: Path) -> str:
    return markdown_scores(pd.read_parquet(data_dir / "human_eval_scores" / "yor.parquet"))


def _target_rows(lang: str) -> pd.DataFrame:
    rows = contract_rows(6, lang).assign(origin="template", translation_strategy="whole", instruction_id="t")
    rows["instruction_en"] = [f"Write about topic {i}." for i in range(len(rows))]
    return rows[list(TARGET_COLUMNS)]


@asset(partitions_def=language_partitions, group_name="translate")
def filled_instructions(context: AssetExecutionContext) -> pd.DataFrame:
    """Stand-in for the translate stage's filled rows: the same name, partitions and columns."""
    return _target_rows(context.partition_key)


@asset(partitions_def=language_partitions, group_name="translate")
def translated_instructions(context: AssetExecutionContext) -> pd.DataFrame:
    """Stand-in: no self-instruct rows."""
    return _target_rows(context.partition_key).iloc[0:0]


def test_review_round_through_label_studio(label_studio_server: LabelStudioServer, tmp_path: Path,  # noqa: F811
                                           data_dir: Path) -> None:  # fmt: skip
    server = label_studio_server
    assets = [filled_instructions, translated_instructions, reviewed_instructions, review_sheet]
    resources = {"io_manager": PartitionedParquetIOManager()}
    assert materialize(assets, partition_key="yor", resources=resources).success
    rows = pd.read_parquet(data_dir / "reviewed_instructions" / "yor.parquet")

    result, cursor = _tick(server, None)
    assert isinstance(result, SkipReason) and f"pushed {len(rows)} new task(s)" in result.skip_message
    tasks = {t["data"]["stable_id"]: t for t in _project_tasks(server, "instruct-global review yor")}
    assert set(tasks) == set(rows["id"])
    first, second, third = list(rows["id"])[:3]
    assert tasks[first]["data"]["english_instruction"] == rows.set_index("id").loc[first, "instruction_en"]

    reviewer = server.sign_up_reviewer("chidi@reviewers.test")
    corrected = rows.set_index("id").loc[second, "output"] + " (àtúnṣe)"
    reviewer.annotate(tasks[first]["id"], [_choice("approved", "instruction", "yes")])
    reviewer.annotate(tasks[second]["id"], [_choice("approved", "instruction", "yes"),
                                            _text("corrected_output", "output", corrected)])  # fmt: skip
    reviewer.annotate(tasks[third]["id"], [_choice("approved", "instruction", "no"),
                                           _text("reviewer_note", "instruction", "kò tọ́")])  # fmt: skip

    requests, cursor = _tick(server, cursor)
    assert isinstance(requests, list) and len(requests) == 1
    request = requests[0]
    assert request.tags["instruct_global/label_studio_round"] == "review"
    assert set(request.asset_selection) == {reviewed_instructions.key, review_sheet.key}
    applied = materialize(assets, partition_key="yor", resources=resources, run_config=request.run_config,
                          selection=[reviewed_instructions, review_sheet])  # fmt: skip
    assert applied.success
    meta = applied.asset_materializations_for_node("reviewed_instructions")[0].metadata
    assert (meta["review/approved"].value, meta["review/corrected"].value, meta["review/rejected"].value) == (1, 1, 1)
    reviewed = pd.read_parquet(data_dir / "reviewed_instructions" / "yor.parquet").set_index("id")
    assert reviewed.loc[second, "output"] == corrected
    stored = ReviewStore(data_dir / "review" / "store" / "yor.jsonl")
    assert stored.path.is_file() and len(stored.path.read_text("utf-8").splitlines()) == 3
    assert "chidi@reviewers.test" in stored.path.read_text("utf-8")
    # the next sheet holds the three unreviewed rows; pushing it imports nothing new
    assert len(read_returned_sheet(data_dir / "review" / "outbox" / "yor.csv")) == len(rows) - 3
    idle, _ = _tick(server, cursor)
    assert isinstance(idle, SkipReason) and "pushed 0 new task(s)" in idle.skip_message
    assert len(_project_tasks(server, "instruct-global review yor")) == len(rows)


def test_keys_legacy_tokens_and_refusals(label_studio_server: LabelStudioServer) -> None:  # noqa: F811
    server = label_studio_server
    with LabelStudioClient(server.url, server.access_token) as by_token:
        project = by_token.ensure_project("auth_check", EVAL_KIND, "yor")
        assert by_token.ensure_project("auth_check", EVAL_KIND, "yor") == project  # found, not created again
    with LabelStudioClient(server.url, server.legacy_token) as legacy:  # enabled for this organisation
        assert legacy.ensure_project("auth_check", EVAL_KIND, "yor") == project
        assert legacy.ensure_project("auth_check_review", REVIEW_KIND, "yor") != project
    # an access token obtained by hand is taken as it is (Bearer)
    access = httpx.post(f"{server.url}/api/token/refresh/", json={"refresh": server.access_token}).json()["access"]
    with LabelStudioClient(server.url, access) as by_access:
        assert by_access.ensure_project("auth_check", EVAL_KIND, "yor") == project
    for bad in ("not-a-real-legacy-token-0123456789", server.access_token[:-6] + "AAAAAA"):
        with pytest.raises(LabelStudioError, match="LABEL_STUDIO_API_KEY") as refused:
            LabelStudioClient(server.url, bad).ensure_project("auth_check", EVAL_KIND, "yor")
        assert bad not in str(refused.value) and server.access_token not in str(refused.value)
