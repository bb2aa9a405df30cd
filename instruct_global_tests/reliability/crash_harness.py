"""Run a job with `dagster job execute` in its own process group, SIGKILL it at a request count, run it again.

The moment of the kill comes from a ``FaultProxy`` gate: after k answered requests of a stage, the
proxy holds the next one unanswered; once every request it let through has been answered (and the
client had a moment to keep the answer, as it does the instant an answer arrives) the whole process
group gets SIGKILL. Held requests were never answered, so nothing in flight was paid for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from instruct_global_tests.conftest import REPO_ROOT

DAGSTER = str(Path(sys.executable).with_name("dagster"))
# answers are cached by the thread that received them, microseconds after arrival; this is slack for a
# loaded CI machine, not the trigger (the trigger is the request count)
KEEP_ANSWER_SLACK_S = 0.5


@dataclass
class JobRun:
    returncode: int
    killed: bool
    seconds: float
    log: str


@dataclass
class CrashLog:
    """Kills and resumes per stage, for the printed figures."""

    kills: dict[str, int] = field(default_factory=dict)
    resumes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def killed(self, stage: str, run: JobRun) -> None:
        self.kills[stage] = self.kills.get(stage, 0) + 1
        self.seconds[f"{stage} (killed run)"] = round(run.seconds, 1)

    def resumed(self, stage: str, run: JobRun) -> None:
        """``run`` re-ran the job after the kill in ``stage`` (and may itself have been killed later)."""
        self.resumes[stage] = self.resumes.get(stage, 0) + 1
        self.seconds[f"{stage} (run after the kill)"] = round(run.seconds, 1)


def write_run_config(path: Path, config: dict[str, Any]) -> Path:
    # one process for every step: a kill hits the run, not one of many step processes
    path.write_text(yaml.safe_dump({**config, "execution": {"config": {"in_process": {}}}}), encoding="utf-8")
    return path


def job_env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    instance = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    instance.pop("run_retries", None)  # the test is the one who re-runs
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance), encoding="utf-8")
    return {**os.environ, "DAGSTER_HOME": str(home), "INSTRUCT_GLOBAL_DATA_DIR": str(root / "data"),
            "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}  # fmt: skip


def run_job(
    root: Path,
    module: str,
    job: str,
    config_path: Path,
    env: dict[str, str],
    *,
    kill_when: Callable[[], bool] | None = None,
    slack_s: float = KEEP_ANSWER_SLACK_S,
    timeout_s: float = 300.0,
) -> JobRun:
    """Run the job; with ``kill_when``, SIGKILL its process group as soon as that becomes true."""
    log_path = root / f"{job}-{time.time_ns()}.log"
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [DAGSTER, "job", "execute", "-m", module, "-j", job, "-c", str(config_path),
             "--tags", json.dumps({"dagster/partition": "yor"})],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        killed = False
        try:
            while process.poll() is None:
                if time.monotonic() - started > timeout_s:
                    log.flush()
                    tail = log_path.read_text(encoding="utf-8")[-3000:]
                    raise TimeoutError(f"{job} ran past {timeout_s} s; log {log_path} ends:\n{tail}")
                if kill_when is not None and kill_when():
                    time.sleep(slack_s)
                    os.killpg(process.pid, signal.SIGKILL)
                    killed = True
                    process.wait(timeout=30)
                    break
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
    return JobRun(process.returncode, killed, time.monotonic() - started, log_path.read_text(encoding="utf-8"))


def release_killed_runs(env: dict[str, str]) -> str:
    """`python -m instruct_global.recovery` in the killed run's instance, as a user does after a crash."""
    done = subprocess.run([sys.executable, "-m", "instruct_global.recovery"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def torn_files(data_dir: Path) -> list[str]:
    """Outputs that do not read back: Parquet files, JSON and JSONL exports."""
    torn = []
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            if path.suffix == ".parquet":
                pd.read_parquet(path)
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".jsonl":
                for line in path.read_text(encoding="utf-8").splitlines():
                    json.loads(line)
        except Exception as exc:
            torn.append(f"{path.relative_to(data_dir)}: {type(exc).__name__}: {exc}")
    return torn


def leftover_temp_files(data_dir: Path) -> list[str]:
    """Temporary files an atomic write left behind when killed (harmless: never read as outputs)."""
    return [str(p.relative_to(data_dir)) for p in data_dir.rglob(".*.tmp")]
