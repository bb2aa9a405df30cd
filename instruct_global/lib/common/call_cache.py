"""Content-addressed cache of paid or slow calls (LLM, machine translation).

The key is a hash of backend, model (and revision), canonical parameters and input; parsing is
never part of the key, so a better parser re-reads cached raw answers for free. Values are the
raw response plus usage, as JSON. A small ``state`` table beside it keeps long-lived job ids
(batch and fine-tuning jobs) so that a re-run resumes instead of paying twice.

SQLite (WAL, busy timeout, one connection per thread) by default; PostgreSQL by URL for runs
spread over machines. Writes are ``INSERT ... ON CONFLICT DO NOTHING``: the first answer wins and
concurrent writers never corrupt each other.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_SCHEMA_VERSION = 1


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(backend: str, model: str, params: Mapping[str, Any], payload: Any) -> str:
    """Stable key for one call. ``params`` must hold every setting that changes the answer."""
    material = canonical_json(
        {"v": CACHE_SCHEMA_VERSION, "backend": backend, "model": model, "params": params, "input": payload}
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass
class CacheCounters:
    hits: int = 0
    misses: int = 0
    writes: int = 0


class CallCache(ABC):
    """Key/value store for raw call results, plus a small job-state table."""

    def __init__(self) -> None:
        self.counters = CacheCounters()
        self._counter_lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found = self._get_many(list(dict.fromkeys(keys)))
        with self._counter_lock:
            self.counters.hits += sum(1 for k in keys if k in found)
            self.counters.misses += sum(1 for k in keys if k not in found)
        return found

    def put(self, key: str, value: Mapping[str, Any], *, backend: str, model: str) -> None:
        self.put_many({key: value}, backend=backend, model=model)

    def put_many(self, items: Mapping[str, Mapping[str, Any]], *, backend: str, model: str) -> None:
        if not items:
            return
        rows = [(k, backend, model, time.time(), canonical_json(v)) for k, v in items.items()]
        self._put_many(rows)
        with self._counter_lock:
            self.counters.writes += len(rows)

    def __contains__(self, key: str) -> bool:
        return bool(self._get_many([key]))

    @abstractmethod
    def _get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def _put_many(self, rows: list[tuple[str, str, str, float, str]]) -> None: ...

    @abstractmethod
    def get_state(self, name: str) -> dict[str, Any] | None:
        """Long-lived job state (batch id, fine-tuning job id) stored under a name."""

    @abstractmethod
    def set_state(self, name: str, value: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def count(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLiteCallCache(CallCache):
    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, backend TEXT NOT NULL, "
            "model TEXT NOT NULL, created_at REAL NOT NULL, value TEXT NOT NULL)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.commit()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # a busy timeout lets concurrent runs (several processes) queue for the write lock
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        conn = self._conn()
        for part in _chunks(keys, 500):
            marks = ",".join("?" * len(part))
            for key, value in conn.execute(f"SELECT key, value FROM calls WHERE key IN ({marks})", part):
                found[key] = json.loads(value)
        return found

    def _put_many(self, rows: list[tuple[str, str, str, float, str]]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO calls (key, backend, model, created_at, value) VALUES (?,?,?,?,?) "
                "ON CONFLICT(key) DO NOTHING",
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def get_state(self, name: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, name: str, value: Mapping[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO state (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, canonical_json(value)),
        )

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class PostgresCallCache(CallCache):
    """The same store in PostgreSQL, for runs on several machines sharing one cache.

    psycopg2 (which dagster-postgres already needs), not psycopg 3: with psycopg 3 installed,
    SQLAlchemy 2.1 picks it for ``postgresql://`` and Dagster's Postgres storage then fails.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        import psycopg2  # lazy: only deployments with a server database need it

        self._psycopg2 = psycopg2
        self._url = url
        self._local = threading.local()
        with self._conn().cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS instruct_global_calls (key TEXT PRIMARY KEY, backend TEXT NOT NULL, "
                "model TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, value JSONB NOT NULL)"
            )
            cur.execute(
                "CREATE TABLE IF NOT EXISTS instruct_global_state (name TEXT PRIMARY KEY, value JSONB NOT NULL)"
            )

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._psycopg2.connect(self._url)
            conn.autocommit = True
            self._local.conn = conn
        return conn

    def _get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._conn().cursor() as cur:
            for part in _chunks(keys, 1000):
                cur.execute("SELECT key, value FROM instruct_global_calls WHERE key = ANY(%s)", (part,))
                for key, value in cur.fetchall():
                    found[key] = value if isinstance(value, dict) else json.loads(value)
        return found

    def _put_many(self, rows: list[tuple[str, str, str, float, str]]) -> None:
        conn = self._conn()
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO instruct_global_calls (key, backend, model, created_at, value) "
                    "VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT (key) DO NOTHING",
                    rows,
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True

    def get_state(self, name: str) -> dict[str, Any] | None:
        with self._conn().cursor() as cur:
            cur.execute("SELECT value FROM instruct_global_state WHERE name = %s", (name,))
            row = cur.fetchone()
        if not row:
            return None
        return row[0] if isinstance(row[0], dict) else json.loads(row[0])

    def set_state(self, name: str, value: Mapping[str, Any]) -> None:
        with self._conn().cursor() as cur:
            cur.execute(
                "INSERT INTO instruct_global_state (name, value) VALUES (%s, %s::jsonb) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, canonical_json(value)),
            )

    def count(self) -> int:
        with self._conn().cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM instruct_global_calls")
            return int(cur.fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def open_call_cache(url: str) -> CallCache:
    """``sqlite:///abs/path.db``, a plain file path, or ``postgresql://user@host/db``."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresCallCache(url)
    if url.startswith("sqlite:///"):
        return SQLiteCallCache(url.removeprefix("sqlite:///"))
    if "://" in url:
        raise ValueError(f"unsupported call cache URL scheme in {url.split('://')[0]}://…; use sqlite:/// or postgresql://")
    return SQLiteCallCache(url)
