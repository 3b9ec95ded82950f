"""Tests for textspan.text_embeddings: batched encoding and the on-disk cache of text embeddings."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from unittest import mock

import pytest
import torch
from conftest import tiny_clip

from hooked_clip.hooked_clip import HookedCLIP
from textspan import text_embeddings
from textspan.pools import pool_hash
from textspan.text_embeddings import (
    CACHE_ENV,
    FILE_FORMAT,
    FILE_VERSION,
    embed_texts,
    text_embedding_cache_dir,
    text_embedding_cache_file,
)

POOL = ["A photo of a dog", "A photo of a cat", "A red car", "Snow on a mountain", "The letter V"]
OTHER_POOL = ["A photo of a bird", "A blue sky"]
LOGGER = "textspan.text_embeddings"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Point the default cache at a temporary folder, so no test writes to the real home folder."""
    root = tmp_path / "env-cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return root


def build_model(name: str | None = "tiny", pretrained: str | None = "some-tag", dtype=torch.float32) -> HookedCLIP:
    model = HookedCLIP.from_open_clip_model(tiny_clip(), dtype=dtype)
    model.visual.cfg.model_name = name
    model.visual.cfg.pretrained = pretrained
    return model


class TowerCalls:
    """Count forward calls of a model's text tower with a forward hook."""

    def __init__(self, model: HookedCLIP):
        self.count = 0
        model.text.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        self.count += 1


def cache_files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_embeddings_are_unit_norm_encode_text(tmp_path):
    model = build_model()
    embeddings = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert embeddings.shape == (len(POOL), model.visual.cfg.d_embed)
    assert embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(len(POOL)))
    torch.testing.assert_close(embeddings, model.encode_text(POOL, normalize=True))


def test_cache_hit_skips_text_tower(tmp_path, caplog):
    model = build_model()
    calls = TowerCalls(model)

    first = embed_texts(model, POOL, cache_dir=tmp_path, batch_size=2, progress=False)
    calls_after_first = calls.count
    with caplog.at_level(logging.INFO, logger=LOGGER):
        second = embed_texts(model, POOL, cache_dir=tmp_path, batch_size=2, progress=False)

    assert calls_after_first == 3  # five texts in batches of two
    assert calls.count == calls_after_first
    assert torch.equal(first, second)
    assert "Loaded embeddings of 5 texts" in caplog.text


def test_cache_file_location_and_contents(tmp_path):
    model = build_model()
    embeddings = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    path = text_embedding_cache_file(model, POOL, cache_dir=tmp_path)

    assert path is not None
    assert path.parent == tmp_path / "text-embeddings"
    assert path.name.startswith("tiny-")
    assert cache_files(path.parent) == [path.name]

    data = torch.load(path, weights_only=True)
    assert data["format"] == FILE_FORMAT
    assert data["version"] == FILE_VERSION
    assert data["key"] == {
        "model_name": "tiny",
        "weights": {"tag": "some-tag"},
        "dtype": "torch.float32",
        "pool_hash": pool_hash(POOL),
        "n_texts": len(POOL),
    }
    assert torch.equal(data["embeddings"], embeddings)


def test_cache_file_mode_follows_umask(tmp_path):
    model = build_model()
    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    path = text_embedding_cache_file(model, POOL, cache_dir=tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_different_pool_different_file(tmp_path):
    model = build_model()
    calls = TowerCalls(model)

    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    count_after_first = calls.count
    other = embed_texts(model, OTHER_POOL, cache_dir=tmp_path, progress=False)

    assert calls.count > count_after_first
    assert other.shape[0] == len(OTHER_POOL)
    assert len(cache_files(tmp_path / "text-embeddings")) == 2
    assert text_embedding_cache_file(model, POOL, tmp_path) != text_embedding_cache_file(model, OTHER_POOL, tmp_path)


def test_reordered_pool_different_file(tmp_path):
    model = build_model()
    forward = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    backward = embed_texts(model, POOL[::-1], cache_dir=tmp_path, progress=False)
    # Each text sits at another row of the batch, which can change float32 rounding (about 1e-7).
    torch.testing.assert_close(backward, forward.flip(0))
    assert len(cache_files(tmp_path / "text-embeddings")) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"name": "other"},
        {"pretrained": "other-tag"},
        {"dtype": torch.float64},
    ],
)
def test_key_fields_change_file(tmp_path, change):
    base = build_model()
    changed = build_model(**{"name": "tiny", "pretrained": "some-tag", **change})
    assert text_embedding_cache_file(base, POOL, tmp_path) != text_embedding_cache_file(changed, POOL, tmp_path)


def test_float64_model_cached_in_float64(tmp_path):
    model = build_model(dtype=torch.float64)
    first = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    second = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    assert first.dtype == torch.float64
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a torch file at all", b"PK\x03\x04 truncated zip"],
)
def test_corrupt_file_recomputed_with_warning(tmp_path, caplog, content):
    model = build_model()
    expected = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    path = text_embedding_cache_file(model, POOL, cache_dir=tmp_path)
    path.write_bytes(content)
    calls = TowerCalls(model)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        recomputed = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert calls.count == 1
    assert torch.equal(recomputed, expected)
    assert "Ignoring the text embedding cache file" in caplog.text
    assert str(path) in caplog.text
    assert torch.equal(torch.load(path, weights_only=True)["embeddings"], expected)


def test_truncated_cache_file_recomputed(tmp_path, caplog):
    model = build_model()
    expected = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    path = text_embedding_cache_file(model, POOL, cache_dir=tmp_path)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        recomputed = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert torch.equal(recomputed, expected)
    assert "cannot be read" in caplog.text


def planted_file(path: Path, **changes) -> object:
    """Overwrite the cache file at `path` with changed fields and return the planted embeddings."""
    data = torch.load(path, weights_only=True)
    data["embeddings"] = torch.nn.functional.normalize(torch.randn_like(data["embeddings"]), dim=-1)
    for name, value in changes.items():
        if name == "key":
            data["key"] = {**data["key"], **value}
        else:
            data[name] = value
    torch.save(data, path)
    return data["embeddings"]


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"key": {"pool_hash": "0" * 64}}, "differs from the expected key"),
        ({"key": {"weights": {"tag": "another-tag"}}}, "differs from the expected key"),
        ({"version": FILE_VERSION + 1}, "version 2"),
        ({"format": "something else"}, "format 'something else'"),
        ({"embeddings": torch.zeros(len(POOL), 24)}, "not unit norm"),
        ({"embeddings": torch.ones(len(POOL), 3)}, "have shape (5, 3), expected (5, 24)"),
        ({"embeddings": torch.eye(len(POOL), 24, dtype=torch.float64)}, "dtype torch.float64, expected torch.float32"),
        ({"embeddings": torch.full((len(POOL), 24), float("nan"))}, "NaN or infinite"),
        ({"embeddings": [[1.0] * 24] * len(POOL)}, "no embeddings tensor"),
    ],
)
def test_mismatching_file_never_trusted(tmp_path, caplog, changes, reason):
    model = build_model()
    expected = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    path = text_embedding_cache_file(model, POOL, cache_dir=tmp_path)
    planted = planted_file(path, **changes)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert torch.equal(result, expected)
    assert not torch.equal(result, torch.as_tensor(planted, dtype=result.dtype))
    assert reason in caplog.text


def test_file_of_other_content_not_trusted(tmp_path, caplog):
    model = build_model()
    path = text_embedding_cache_file(model, POOL, cache_dir=tmp_path)
    path.parent.mkdir(parents=True)
    torch.save(torch.zeros(3), path)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert result.shape == (len(POOL), 24)
    assert "contains a Tensor, not a dict" in caplog.text


def test_random_weights_not_cached(tmp_path, caplog):
    model = build_model(pretrained=None)
    calls = TowerCalls(model)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        first = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
        second = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert calls.count == 2
    assert torch.equal(first, second)
    assert not (tmp_path / "text-embeddings").exists()
    assert "random weights" in caplog.text
    assert text_embedding_cache_file(model, POOL, tmp_path) is None


def test_unnamed_model_not_cached(tmp_path, caplog):
    model = HookedCLIP.from_open_clip_model(tiny_clip())
    assert model.visual.cfg.model_name is None

    with caplog.at_level(logging.INFO, logger=LOGGER):
        embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert not (tmp_path / "text-embeddings").exists()
    assert "the model has no name" in caplog.text


def test_named_model_without_tag_not_cached(tmp_path):
    model = build_model(name="tiny", pretrained=None)
    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "text-embeddings").exists()


def test_checkpoint_keyed_by_path_size_mtime(tmp_path):
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"0123456789")
    os.utime(checkpoint, ns=(1_000_000_000, 1_000_000_000))
    model = build_model(pretrained=str(checkpoint))
    calls = TowerCalls(model)

    first_file = text_embedding_cache_file(model, POOL, tmp_path)
    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    assert calls.count == 1

    os.utime(checkpoint, ns=(2_000_000_000, 2_000_000_000))
    touched_file = text_embedding_cache_file(model, POOL, tmp_path)
    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    assert touched_file != first_file
    assert calls.count == 2

    checkpoint.write_bytes(b"01234567890123")
    os.utime(checkpoint, ns=(2_000_000_000, 2_000_000_000))
    assert text_embedding_cache_file(model, POOL, tmp_path) not in (first_file, touched_file)

    key = torch.load(touched_file, weights_only=True)["key"]
    assert key["weights"] == {"checkpoint": str(checkpoint.resolve()), "size": 10, "mtime_ns": 2_000_000_000}


def test_checkpoint_relative_path_resolved(tmp_path, monkeypatch):
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    relative = build_model(pretrained="./weights.pt")
    absolute = build_model(pretrained=str(checkpoint))
    assert text_embedding_cache_file(relative, POOL, tmp_path) == text_embedding_cache_file(absolute, POOL, tmp_path)


def test_missing_checkpoint_not_cached(tmp_path, caplog):
    model = build_model(pretrained=str(tmp_path / "deleted.pt"))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "text-embeddings").exists()
    assert "cannot be read" in caplog.text


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    model = build_model()
    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)
    embed_texts(model, OTHER_POOL, cache_dir=tmp_path, progress=False)
    path = text_embedding_cache_file(model, POOL, tmp_path)
    path.write_bytes(b"corrupt")
    embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    names = cache_files(tmp_path / "text-embeddings")
    assert len(names) == 2
    assert not [name for name in names if name.endswith(".tmp")]


def test_failed_write_keeps_no_partial_file(tmp_path, caplog):
    model = build_model()

    def write_half_then_fail(data, file):
        file.write(b"PK\x03\x04 partial")
        raise OSError("No space left on device")

    with mock.patch.object(text_embeddings.torch, "save", side_effect=write_half_then_fail):
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            embeddings = embed_texts(model, POOL, cache_dir=tmp_path, progress=False)

    assert embeddings.shape == (len(POOL), 24)
    assert cache_files(tmp_path / "text-embeddings") == []
    assert "Failed to write the text embedding cache file" in caplog.text
    assert "No space left on device" in caplog.text


def test_unwritable_cache_dir_still_returns(tmp_path, caplog):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    model = build_model()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        embeddings = embed_texts(model, POOL, cache_dir=blocker, progress=False)
    assert embeddings.shape == (len(POOL), 24)
    assert "Failed to write" in caplog.text


def test_cache_dir_from_environment(isolated_cache):
    model = build_model()
    embed_texts(model, POOL, progress=False)
    assert len(cache_files(isolated_cache / "text-embeddings")) == 1
    assert text_embedding_cache_dir() == isolated_cache / "text-embeddings"


def test_cache_dir_default_in_home(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV)
    assert text_embedding_cache_dir() == tmp_path / "home" / ".cache" / "hooked-clip" / "text-embeddings"
    monkeypatch.setenv(CACHE_ENV, "")
    assert text_embedding_cache_dir() == tmp_path / "home" / ".cache" / "hooked-clip" / "text-embeddings"


def test_cache_dir_argument_beats_environment(tmp_path, isolated_cache):
    model = build_model()
    embed_texts(model, POOL, cache_dir=tmp_path / "explicit", progress=False)
    assert len(cache_files(tmp_path / "explicit" / "text-embeddings")) == 1
    assert not isolated_cache.exists()


def test_progress_and_batch_size_forwarded(tmp_path):
    model = build_model(pretrained=None)
    with mock.patch.object(model, "encode_text", wraps=model.encode_text) as encode_text:
        embed_texts(model, POOL, batch_size=2, progress=False)
        embed_texts(model, POOL, progress=True)
    assert encode_text.call_args_list[0].kwargs == {"normalize": True, "batch_size": 2, "progress": False}
    assert encode_text.call_args_list[1].kwargs == {"normalize": True, "batch_size": 256, "progress": True}


@pytest.mark.parametrize(
    "texts, error, message",
    [
        ([], ValueError, "texts is empty"),
        (["a dog", 3], TypeError, r"texts\[1\] is int 3, expected str"),
        (["a dog", None], TypeError, r"texts\[1\] is NoneType"),
        (["a dog", "   "], ValueError, r"texts\[1\] is whitespace only"),
        ("a dog", TypeError, "got a single str"),
        ({"a dog"}, TypeError, "texts must be a sequence of strings"),
    ],
)
def test_rejects_bad_texts(tmp_path, texts, error, message):
    model = build_model()
    with pytest.raises(error, match=message):
        embed_texts(model, texts, cache_dir=tmp_path, progress=False)
    assert not (tmp_path / "text-embeddings").exists()


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be positive, got 0"),
        ({"batch_size": 2.0}, TypeError, "batch_size must be an int, got float"),
        ({"batch_size": True}, TypeError, "batch_size must be an int, got bool"),
        ({"cache_dir": 5}, TypeError, "cache_dir must be None, a str or an os.PathLike"),
    ],
)
def test_rejects_bad_arguments(arguments, error, message):
    for model in (build_model(), build_model(pretrained=None)):
        with pytest.raises(error, match=message):
            embed_texts(model, POOL, progress=False, **arguments)


def test_rejects_non_hooked_clip():
    with pytest.raises(TypeError, match="model must be a HookedCLIP, got CLIP"):
        embed_texts(tiny_clip(), POOL, progress=False)
