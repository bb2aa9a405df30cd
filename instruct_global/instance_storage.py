"""The local instance's event log storage: Dagster's SQLite storage with pool slots claimed one at a time.

Dagster's SQL storage claims a pool slot by reading a free slot row and then writing to it. PostgreSQL
and MySQL lock that row (`FOR UPDATE SKIP LOCKED`); SQLite ignores the clause and Python's sqlite3
driver begins the transaction only at the write, so runs claiming at the same moment all read the same
free row and all succeed. Reproduced with Dagster 1.13: twelve processes claiming one pool of limit 4
at once got 9 to 12 slots. `dagster job backfill` and `make backfill` start one process per partition
at once, so the wikipedia, bbc and llm_api pools would not hold on the local instance.

This subclass takes an exclusive file lock (beside the SQLite files, so every process using the
instance shares it) around each method that reads and then writes the pool tables. A claim holds it
for a few milliseconds. PostgreSQL (the docker-compose and Kubernetes deployments) needs none of this.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData

LOCK_FILE_NAME = "pool-slots.lock"


def default_event_log_dir() -> str:
    """Where Dagster's default SQLite storage keeps event logs: $DAGSTER_HOME/history/runs."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError(
            "instruct_global.instance_storage needs DAGSTER_HOME (the folder holding dagster.yaml) "
            "or an explicit event_log_storage.config.base_dir"
        )
    return str(Path(home) / "history" / "runs")


class _InterProcessLock:
    """An exclusive flock on one file, re-entrant within a process (claims call other locked methods)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None


class PoolSafeSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose pool-slot bookkeeping is serialised across processes.

    In dagster.yaml:

        event_log_storage:
          module: instruct_global.instance_storage
          class: PoolSafeSqliteEventLogStorage

    `base_dir` defaults to $DAGSTER_HOME/history/runs, where Dagster's default storage puts it.
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir or default_event_log_dir(), inst_data=inst_data)
        self._base_dir_from_home = base_dir is None
        self._pool_lock = _InterProcessLock(Path(self._base_dir) / LOCK_FILE_NAME)

    def register_instance(self, instance: Any) -> None:
        super().register_instance(instance)
        # The default comes from $DAGSTER_HOME; an instance opened from another folder
        # (DagsterInstance.from_config(dir)) would otherwise read some other instance's event logs.
        root = getattr(instance, "root_directory", None)
        expected = Path(root).resolve() / "history" / "runs" if root else None
        if self._base_dir_from_home and expected is not None and expected != Path(self._base_dir).resolve():
            raise RuntimeError(
                f"this instance's dagster.yaml is in {root}, but DAGSTER_HOME points at "
                f"{os.environ.get('DAGSTER_HOME')}: set DAGSTER_HOME={root} (event logs are kept under "
                "$DAGSTER_HOME/history/runs), or give event_log_storage.config.base_dir"
            )

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PoolSafeSqliteEventLogStorage:
        return cls(inst_data=inst_data, **dict(config_value))

    # Every public method that reads the pool tables and then writes them, or writes them at all.

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ):
        with self._pool_lock.held():
            return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)

    def free_concurrency_slot_for_step(self, run_id: str, step_key: str) -> None:
        with self._pool_lock.held():
            super().free_concurrency_slot_for_step(run_id, step_key)

    def free_concurrency_slots_for_run(self, run_id: str) -> None:
        with self._pool_lock.held():
            super().free_concurrency_slots_for_run(run_id)

    def initialize_concurrency_limit_to_default(self, concurrency_key: str) -> bool:
        with self._pool_lock.held():
            return super().initialize_concurrency_limit_to_default(concurrency_key)

    def set_concurrency_slots(self, concurrency_key: str, num: int) -> None:
        with self._pool_lock.held():
            super().set_concurrency_slots(concurrency_key, num)

    def delete_concurrency_limit(self, concurrency_key: str) -> None:
        with self._pool_lock.held():
            super().delete_concurrency_limit(concurrency_key)

    def assign_pending_steps(self, concurrency_keys: Sequence[str]):
        with self._pool_lock.held():
            return super().assign_pending_steps(concurrency_keys)

    def add_pending_step(self, *args: Any, **kwargs: Any):
        with self._pool_lock.held():
            return super().add_pending_step(*args, **kwargs)

    def get_pool_limits(self):  # reconciles limits from slot rows, a write
        with self._pool_lock.held():
            return super().get_pool_limits()

    def get_concurrency_keys(self) -> set[str]:  # reconciles too
        with self._pool_lock.held():
            return super().get_concurrency_keys()
