"""Dataset-scale decomposition to chunk files: resume after a failure, and read back."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch
from conftest import tiny_clip
from PIL import Image

import textspan.store as store
from hooked_clip.hooked_clip import HookedCLIP
from textspan.cli import main
from textspan.decomposition import decompose
from textspan.images import load_images


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    generator = np.random.default_rng(0)
    for index in range(7):
        pixels = generator.integers(0, 255, (40, 50, 3), dtype=np.uint8)
        subfolder = folder / "sub" if index % 2 else folder
        Image.fromarray(pixels).save(subfolder / f"image{index}.png")
    return folder


@pytest.fixture
def model():
    return HookedCLIP.from_open_clip_model(tiny_clip(), open_clip.get_tokenizer("ViT-B-32"))


def test_store_matches_decompose(model, photo_folder, tmp_path):
    paths = sorted(photo_folder.rglob("*.png"))
    store.decompose_folder(model.visual, paths, model.preprocess, tmp_path / "out", layers=[-1], batch_size=2,
                           chunk_size=3, progress=False)
    stored = store.load_store(tmp_path / "out")
    images, _ = load_images(paths, model.preprocess)
    direct = decompose(model.visual, images)
    assert stored.images == [str(path) for path in paths]
    assert stored.layers == [2]
    torch.testing.assert_close(stored.heads[:, 0], direct.heads[:, 2])
    torch.testing.assert_close(stored.total(), direct.total(), rtol=1e-5, atol=1e-6)


def test_resume_after_failure(model, photo_folder, tmp_path, monkeypatch):
    paths = sorted(photo_folder.rglob("*.png"))
    out = tmp_path / "out"
    original = store._decompose_chunk
    calls = []

    def fail_on_second_chunk(*args):
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return original(*args)

    monkeypatch.setattr(store, "_decompose_chunk", fail_on_second_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.decompose_folder(model.visual, paths, model.preprocess, out, layers=[-1], chunk_size=3, progress=False)
    assert sorted(path.name for path in out.iterdir()) == ["chunk-00000.pt", "manifest.json"]
    with pytest.raises(FileNotFoundError, match="has not finished"):
        store.load_store(out)

    first_chunk_time = (out / "chunk-00000.pt").stat().st_mtime_ns
    monkeypatch.setattr(store, "_decompose_chunk", original)
    store.decompose_folder(model.visual, paths, model.preprocess, out, layers=[-1], chunk_size=3, progress=False)
    assert (out / "chunk-00000.pt").stat().st_mtime_ns == first_chunk_time
    assert len(store.load_store(out).images) == 7


def test_other_job_in_folder_rejected(model, photo_folder, tmp_path):
    paths = sorted(photo_folder.rglob("*.png"))
    out = tmp_path / "out"
    store.decompose_folder(model.visual, paths[:3], model.preprocess, out, layers=[-1], chunk_size=3, progress=False)
    with pytest.raises(ValueError, match="images"):
        store.decompose_folder(model.visual, paths, model.preprocess, out, layers=[-1], chunk_size=3, progress=False)


def test_missing_image_rejected(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="do not exist"):
        store.decompose_folder(model.visual, [tmp_path / "nope.png"], model.preprocess, tmp_path / "out", layers=[-1], progress=False)


def test_load_rejects_plain_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        store.load_store(tmp_path)


def test_cli_decompose_job(photo_folder, tmp_path, capsys):
    out = tmp_path / "job"
    arguments = ["decompose", "--model", "ViT-S-32-alt", "--pretrained", "random", "--images", str(photo_folder),
                 "--out", str(out), "--layers", "-1", "--batch-size", "4", "--chunk-size", "4"]
    assert main(arguments) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["images"]) == 7
    assert manifest["layers"] == [11]
    assert main(arguments) == 0
    assert "Decomposed 7 images" in capsys.readouterr().out


def test_other_weights_rejected(model, photo_folder, tmp_path):
    paths = sorted(photo_folder.rglob("*.png"))
    out = tmp_path / "out"
    store.decompose_folder(model.visual, paths, model.preprocess, out, layers=[-1], chunk_size=3, progress=False)
    other = HookedCLIP.from_open_clip_model(tiny_clip(seed=5), open_clip.get_tokenizer("ViT-B-32"))
    with pytest.raises(ValueError, match="weights"):
        store.decompose_folder(other.visual, paths, other.preprocess, out, layers=[-1], chunk_size=3, progress=False)


def test_corrupt_image_rejected_before_writing(model, photo_folder, tmp_path):
    broken = photo_folder / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    paths = sorted(photo_folder.rglob("*.*"))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="broken.jpg"):
        store.decompose_folder(model.visual, paths, model.preprocess, out, layers=[-1], progress=False)
    assert not (out / "manifest.json").exists()
