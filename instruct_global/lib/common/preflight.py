"""Checks that take seconds, run before any stage pays for or loads anything.

Each check returns a ``Problem`` (what is missing, and the fix: a variable to set, a command to
run, an alternative backend) or None. The caller collects every problem and raises one
``PreflightError`` listing them all, so a run with three things missing is fixed in one go
instead of failing three times, minutes apart.

``hub_offline`` tells whether the Hugging Face hub can be reached (or ``HF_HUB_OFFLINE`` says not
to try); model loaders pass ``local_files_only`` then, so an offline run never waits for retries.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

HUB_URL = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on"}
CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str


def format_problems(problems: Sequence[Problem], scope: str) -> str:
    noun = "problem" if len(problems) == 1 else "problems"
    lines = [f"Preflight of {scope}: {len(problems)} {noun}; nothing was loaded or paid for."]
    for number, problem in enumerate(problems, start=1):
        lines.append(f"  {number}. {problem.what}")
        lines.append(f"     Fix: {problem.fix}")
    return "\n".join(lines)


class PreflightError(RuntimeError):
    """Everything a run lacks, in one message."""

    def __init__(self, problems: Sequence[Problem], scope: str) -> None:
        self.problems = list(problems)
        super().__init__(format_problems(self.problems, scope))


def raise_if_problems(problems: Sequence[Problem], scope: str) -> None:
    if problems:
        raise PreflightError(problems, scope)


# ---------------------------------------------------------------- reachability


def _host_port(url: str) -> tuple[str, int] | None:
    parsed = urlparse(url if "://" in url else f"https://{url}")
    if not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or (80 if parsed.scheme == "http" else 443)


@functools.lru_cache(maxsize=64)
def _can_connect(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:  # name resolution, refused, unreachable, timeout
        return False


def can_connect(url: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> bool:
    """A TCP connection to the URL's host opens within ``timeout`` (memoised per process)."""
    target = _host_port(url)
    return target is not None and _can_connect(target[0], target[1], timeout)


def hub_offline(env: Mapping[str, str] | None = None) -> bool:
    """True when HF_HUB_OFFLINE is set or the hub (HF_ENDPOINT) cannot be reached."""
    env = os.environ if env is None else env
    if env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    return not can_connect(env.get("HF_ENDPOINT") or HUB_URL)


def http_server_problem(
    base_url: str, what: str, fix: str, timeout: float = CONNECT_TIMEOUT_SECONDS, attempts: int = 3
) -> Problem | None:
    """The server answers HTTP at all (any status counts: 401 and 404 still show it is there).

    Refused connections fail at once (nothing listens). A server that took the connection and then
    reset it, cut its answer short or was slow is asked again: one flaky answer must not fail a step
    before it starts; only ``attempts`` failures in a row are a problem.
    """
    import httpx

    url = base_url.rstrip("/") + "/models"
    for attempt in range(attempts):
        try:
            httpx.get(url, timeout=timeout)
            return None
        except (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return Problem(f"{what} at {base_url} does not answer ({type(exc).__name__})", fix)
        except httpx.HTTPError as exc:
            if attempt == attempts - 1:
                return Problem(f"{what} at {base_url} does not answer ({type(exc).__name__})", fix)
    return None


def endpoint_problem(url: str, what: str, fix: str) -> Problem | None:
    if can_connect(url):
        return None
    return Problem(f"{what} ({url}) cannot be reached from here", fix)


# ---------------------------------------------------------------- files and variables


def env_problem(env: Mapping[str, str], name: str, what: str, fix: str) -> Problem | None:
    if env.get(name, "").strip():
        return None
    return Problem(f"{name} is not set ({what})", fix)


def file_problem(path: str | Path, what: str, fix: str) -> Problem | None:
    path = Path(path).expanduser()
    if path.is_file() and os.access(path, os.R_OK):
        return None
    state = "is a folder" if path.is_dir() else "is not readable" if path.exists() else "does not exist"
    where = "" if path.is_absolute() else f" (relative to the current folder {Path.cwd()})"
    return Problem(f"{what}: {path} {state}{where}", fix)


_WEIGHTS = (".safetensors", ".bin")


def _local_model_problem(path: Path, what: str, fix: str) -> Problem | None:
    if not path.is_dir():
        return Problem(f"{what}: there is no folder {path}", fix)
    names = {p.name for p in path.iterdir()}
    missing = [n for n in ("config.json",) if n not in names]
    if not any(n.endswith(_WEIGHTS) for n in names):
        missing.append("model weights (*.safetensors)")
    if missing:
        return Problem(f"{what}: the folder {path} lacks {', '.join(missing)}", fix)
    return None


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or Path(name).expanduser().exists()


def hf_model_problem(name: str, what: str, fix: str, *, offline: bool, revision: str | None = None) -> Problem | None:
    """A transformers model (hub name or folder) can be loaded: present locally, or downloadable."""
    if looks_like_path(name):
        return _local_model_problem(Path(name).expanduser(), what, fix)
    if not offline:
        return None  # the hub answers: from_pretrained downloads it
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers always brings it
        return Problem(f"{what}: huggingface_hub is missing", "pip install huggingface_hub")
    found = try_to_load_from_cache(repo_id=name, filename="config.json", revision=revision)
    if isinstance(found, str):
        return None
    return Problem(
        f"{what}: {name!r} is not in the local Hugging Face cache, and the hub is offline "
        "(HF_HUB_OFFLINE=1 or huggingface.co unreachable), so it cannot be downloaded",
        fix,
    )
