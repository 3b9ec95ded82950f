"""Unit-norm text embeddings of description pools, encoded in batches and cached on disk per model,
weights, dtype and pool content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from hooked_clip.hooked_clip import HookedCLIP
from hooked_clip.loading import is_checkpoint_path
from textspan._io import atomic_torch_save
from textspan.pools import pool_hash, validate_pool

logger = logging.getLogger(__name__)

CACHE_ENV = "HOOKED_CLIP_CACHE"
CACHE_SUBDIR = "text-embeddings"
FILE_FORMAT = "hooked-clip text embeddings"
# Bump when the embeddings or the key change meaning, so that older files stop matching.
FILE_VERSION = 1

CacheKey = dict[str, object]


def text_embedding_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder that `embed_texts` caches text embeddings in.

    It is `<root>/text-embeddings`, where `<root>` is `cache_dir` if given, else the environment
    variable `HOOKED_CLIP_CACHE` if set and non-empty, else `~/.cache/hooked-clip`. The folder is
    not created here.

    Raises:
        TypeError: `cache_dir` is not None, a string or a path.
    """
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(
            f"cache_dir must be None, a str or an os.PathLike, got {type(cache_dir).__name__} {cache_dir!r}."
        )
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hooked-clip"
    return Path(cache_dir).expanduser() / CACHE_SUBDIR


def text_embedding_cache_file(
    model: HookedCLIP, texts: Sequence[str], cache_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """Return the cache file that `embed_texts` reads and writes for `model` and `texts`.

    Returns None, and logs the reason at INFO level, for a model that is never cached. Those are
    models without a model name or with random weights (`pretrained=None`), because two of them
    can share a name but not their weights, and models whose checkpoint file cannot be read.

    Raises:
        TypeError: `model` is not a `HookedCLIP`, or `texts` or `cache_dir` has the wrong type.
        ValueError: `texts` is empty or contains a blank entry.
    """
    _check_model(model)
    texts = validate_pool(texts)
    key = _cache_key(model, texts)
    if key is None:
        return None
    return text_embedding_cache_dir(cache_dir) / _file_name(key)


def embed_texts(
    model: HookedCLIP,
    texts: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> Float[Tensor, "n_texts d_embed"]:
    """Encode `texts` with the text tower of `model` into unit-norm embeddings, with a disk cache.

    Texts are encoded in batches of `batch_size` by `model.encode_text`, which shows a tqdm
    progress bar when `progress` is true. The result is stored in the file that
    `text_embedding_cache_file` names. The cache key is the model name, the pretrained tag (for a
    checkpoint path, the resolved path with the file's size and modification time), the dtype and
    `pool_hash(texts)`. The device is not part of the key, so embeddings cached on one device are
    loaded on another, where recomputing them would differ only by float rounding. Models without
    a name or with random weights are never cached (see `text_embedding_cache_file`).

    The file is written to a temporary file and moved into place with `os.replace`. A later call
    with the same key loads the file instead of running the text tower. A file that cannot be
    read, or whose stored key, shape, dtype or norms do not match, is recomputed and rewritten,
    with a logged warning. A cache folder that cannot be written to is also logged as a warning,
    and the embeddings are still returned.

    Returns:
        A `[n_texts, d_embed]` tensor of unit L2 norm rows, in the order of `texts`, on the
        model's device and in its dtype.

    Raises:
        TypeError: `model` is not a `HookedCLIP`, `texts` is not a sequence of strings, or
            `batch_size` or `cache_dir` has the wrong type.
        ValueError: `texts` is empty or contains a blank entry, or `batch_size` is not positive.
    """
    _check_model(model)
    texts = validate_pool(texts)
    _check_batch_size(batch_size)
    folder = text_embedding_cache_dir(cache_dir)

    key = _cache_key(model, texts)
    if key is None:
        return _encode(model, texts, batch_size, progress)

    path = folder / _file_name(key)
    cached = _read_cache(path, key, len(texts), model.visual.cfg.d_embed, model.visual.cfg.dtype)
    if cached is not None:
        logger.info("Loaded embeddings of %d texts from %s.", len(texts), path)
        return cached.to(model.device)

    embeddings = _encode(model, texts, batch_size, progress)
    _write_cache(path, key, embeddings)
    return embeddings


def _encode(
    model: HookedCLIP, texts: list[str], batch_size: int, progress: bool
) -> Float[Tensor, "n_texts d_embed"]:
    return model.encode_text(texts, normalize=True, batch_size=batch_size, progress=progress)


# ---------------------------------------------------------------------------
# Cache key


def _cache_key(model: HookedCLIP, texts: list[str]) -> CacheKey | None:
    """Build the fields that identify the embeddings of `texts`, or None for a model never cached."""
    cfg = model.visual.cfg
    if cfg.model_name is None:
        logger.info(
            "Not caching text embeddings: the model has no name (cfg.model_name is None, as after "
            "HookedCLIP.from_open_clip_model), so two different models would share one cache file."
        )
        return None
    if cfg.pretrained is None:
        logger.info(
            "Not caching text embeddings: %s has random weights (cfg.pretrained is None), and two random "
            "models share a name but not their weights.",
            cfg.model_name,
        )
        return None

    weights = _weights_key(cfg.pretrained)
    if weights is None:
        return None
    return {
        "model_name": cfg.model_name,
        "weights": weights,
        "dtype": str(cfg.dtype),
        "pool_hash": pool_hash(texts),
        "n_texts": len(texts),
    }


def _weights_key(pretrained: str) -> dict[str, object] | None:
    """Identify the weights: a pretrained tag as is, a checkpoint by resolved path, size and mtime."""
    if not is_checkpoint_path(pretrained):
        return {"tag": pretrained}

    # NOTE: the key describes the checkpoint file as it is now. A relative path resolved after a
    # change of working directory, or a file replaced since the model was loaded, names other weights.
    path = Path(pretrained).expanduser().resolve()
    try:
        status = path.stat()
    except OSError as error:
        logger.info("Not caching text embeddings: checkpoint %s cannot be read (%s).", path, error)
        return None
    return {"checkpoint": str(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


def _file_name(key: CacheKey) -> str:
    """Name the file `<model name>-<SHA-256 of the key, 32 hex digits>.pt`."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", str(key["model_name"]))
    return f"{readable}-{digest[:32]}.pt"


# ---------------------------------------------------------------------------
# Cache files


def _read_cache(
    path: Path, key: CacheKey, n_texts: int, d_embed: int, dtype: torch.dtype
) -> Float[Tensor, "n_texts d_embed"] | None:
    """Load the embeddings stored at `path` if the file matches `key`, else log why and return None."""
    if not path.is_file():
        logger.debug("No cached text embeddings at %s.", path)
        return None

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        # torch.load reports a damaged file as one of many exception types, depending on the damage.
        first_line = (str(error).strip().splitlines() or ["empty or truncated file"])[0][:200]
        _warn_ignored(path, f"it cannot be read ({type(error).__name__}: {first_line})")
        return None

    problem = _cache_problem(data, key, n_texts, d_embed, dtype)
    if problem is not None:
        _warn_ignored(path, problem)
        return None
    return data["embeddings"]


def _cache_problem(data: object, key: CacheKey, n_texts: int, d_embed: int, dtype: torch.dtype) -> str | None:
    """Describe why `data` is not the cached embeddings for `key`, or return None if it is."""
    if not isinstance(data, dict):
        return f"it contains a {type(data).__name__}, not a dict"
    if data.get("format") != FILE_FORMAT or data.get("version") != FILE_VERSION:
        return (
            f"it has format {data.get('format')!r} version {data.get('version')!r}, "
            f"expected {FILE_FORMAT!r} version {FILE_VERSION}"
        )
    if data.get("key") != key:
        return f"its key {data.get('key')!r} differs from the expected key {key!r}"

    embeddings = data.get("embeddings")
    if not isinstance(embeddings, Tensor):
        return "it has no embeddings tensor"
    if tuple(embeddings.shape) != (n_texts, d_embed):
        return f"its embeddings have shape {tuple(embeddings.shape)}, expected {(n_texts, d_embed)}"
    if embeddings.dtype != dtype:
        return f"its embeddings have dtype {embeddings.dtype}, expected {dtype}"
    if not bool(torch.isfinite(embeddings).all()):
        return "its embeddings contain NaN or infinite values"

    # Normalising in a low-precision dtype leaves norms a few machine epsilons away from 1.
    tolerance = max(1e-4, 16 * torch.finfo(dtype).eps)
    largest_error = float((embeddings.float().norm(dim=-1) - 1).abs().max())
    if largest_error > tolerance:
        return f"its embeddings are not unit norm (a norm differs from 1 by {largest_error:.3g})"
    return None


def _warn_ignored(path: Path, reason: str) -> None:
    logger.warning("Ignoring the text embedding cache file %s because %s; recomputing and rewriting it.", path, reason)


def _write_cache(path: Path, key: CacheKey, embeddings: Float[Tensor, "n_texts d_embed"]) -> None:
    """Write the embeddings and their key atomically, logging a warning instead of raising on OSError."""
    data = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "key": key,
        "embeddings": embeddings.detach().to("cpu", copy=True),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(data, path)
    except OSError as error:
        logger.warning(
            "Failed to write the text embedding cache file %s (%s: %s); returning the embeddings uncached. "
            "Pass a writable cache_dir or set %s.",
            path,
            type(error).__name__,
            error,
            CACHE_ENV,
        )
        return
    logger.info("Cached embeddings of %d texts in %s.", embeddings.shape[0], path)


def _check_model(model: object) -> None:
    if not isinstance(model, HookedCLIP):
        raise TypeError(
            f"model must be a HookedCLIP, got {type(model).__name__}. Build one with HookedCLIP.from_open_clip "
            "or HookedCLIP.from_open_clip_model."
        )


def _check_batch_size(batch_size: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__} {batch_size!r}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}. Pass a whole number such as 256.")
