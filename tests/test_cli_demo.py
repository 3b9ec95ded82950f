"""Tests for the `textspan demo` command on the shipped photos, offline.

Every model here is a full-size ViT-B-32 or ViT-B-16 with random weights or with a checkpoint
that the test writes, so nothing is downloaded. The download test switches the Hugging Face
hub to offline mode and fails if anything opens a network connection.
"""

from __future__ import annotations

import json
import re
import shutil
import socket

import huggingface_hub.constants
import open_clip
import pytest
import torch
from PIL import Image
from torch import nn

from hooked_clip import HookedViT
from hooked_clip.hooked_clip import HookedCLIP
from textspan.cli import RANDOM_WEIGHTS_NOTE, main
from textspan.decomposition import decompose, direct_effect_shares
from textspan.images import list_images, load_images, shipped_photos_dir

DESCRIPTIONS = [
    "a photo of a cat",
    "a photo of a dog",
    "a red car",
    "a blue sky",
    "a brick wall",
    "a cup of coffee",
    "an astronaut in a spacesuit",
    "a rocket on a launch pad",
    "a field of distant galaxies",
    "a close-up of an eye",
    "a man with a camera",
    "a tall tree",
    "a sandy beach",
    "a snowy mountain",
    "a busy city street",
    "a bowl of soup",
    "a wooden table",
    "a green meadow",
    "a road at night",
    "a starry sky",
    "a smiling person",
    "a black and white photo",
    "an oil painting",
    "a macro photograph",
    "a rough stone texture",
    "a small bird",
    "a yellow flower",
    "a sailing boat",
    "an old building",
    "a parked bicycle",
]

VIT_B_32_LAYERS = 12
VIT_B_32_HEADS = 12


def write_pool(path, descriptions):
    path.write_text("\n".join(descriptions) + "\n", encoding="utf-8")
    return path


def read_report(folder) -> dict:
    return json.loads((folder / "report.json").read_text())


def layer_rows(stdout: str) -> list[int]:
    """Return the layer numbers of the per-layer table rows (`layer  attention  mlp`)."""
    rows = re.findall(r"^\s*(\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s*$", stdout, flags=re.MULTILINE)
    return [int(layer) for layer, _, _ in rows]


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    """Yield a random ViT-B-32 and the path of its state dict (about 600 MB, deleted afterwards).

    The seed differs from the demo's `--seed 0`, and the LayerNorms are randomised, so a demo
    that ignored the file and built random weights would get different numbers.
    """
    torch.manual_seed(1234)
    clip = open_clip.create_model("ViT-B-32", pretrained=None)
    with torch.no_grad():
        for module in clip.visual.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.normal_(1, 0.3)
                module.bias.normal_(0, 0.3)
    clip.eval()

    path = tmp_path_factory.mktemp("checkpoint") / "vit_b_32_random.pt"
    torch.save(clip.state_dict(), path)
    yield clip, path
    path.unlink(missing_ok=True)


# -- random weights ----------------------------------------------------------------------------


def test_demo_random_weights(tmp_path, capsys):
    pool = write_pool(tmp_path / "pool.txt", DESCRIPTIONS)
    out = tmp_path / "out"

    code = main(["demo", "--model", "ViT-B-32", "--pretrained", "random", "--pool", str(pool),
                 "--out", str(out), "--layers", "2"])
    stdout = capsys.readouterr().out

    assert code == 0
    assert RANDOM_WEIGHTS_NOTE in stdout
    assert "attention" in stdout
    assert layer_rows(stdout) == list(range(VIT_B_32_LAYERS))

    photos = list_images(shipped_photos_dir())
    heatmaps = sorted(path.name for path in out.glob("*_heatmap.png"))
    assert heatmaps == sorted(f"{photo.stem}_heatmap.png" for photo in photos)
    for name in heatmaps:
        with Image.open(out / name) as picture:
            assert picture.format == "PNG", name

    report = read_report(out)
    assert report["random_weights"] is True
    assert report["note"] == RANDOM_WEIGHTS_NOTE
    assert len(report["heatmaps"]) == len(photos)
    assert len(report["text_spans"]) == 2 * VIT_B_32_HEADS
    assert {span["layer"] for span in report["text_spans"]} == {10, 11}

    shares = report["direct_effect_shares"]
    total = shares["embed"] + sum(shares["attention"]) + sum(shares["mlp"]) + shares["ln_bias"]
    assert abs(total - 1) < 1e-4


# -- checkpoint files --------------------------------------------------------------------------


def test_checkpoint_gives_saved_embedding(saved_checkpoint):
    clip, path = saved_checkpoint
    model = HookedViT.from_open_clip("ViT-B-32", pretrained=str(path))
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    with torch.no_grad():
        expected = clip.encode_image(images)
        actual = model(images)

    error = float((actual - expected).abs().max() / expected.abs().max())
    assert error < 1e-5
    assert model.cfg.pretrained == str(path)


def test_demo_accepts_checkpoint_path(saved_checkpoint, tmp_path, capsys):
    clip, path = saved_checkpoint
    images = tmp_path / "images"
    images.mkdir()
    for photo in list_images(shipped_photos_dir())[:3]:
        shutil.copy(photo, images / photo.name)
    pool = write_pool(tmp_path / "pool.txt", DESCRIPTIONS[:8])
    out = tmp_path / "out"

    code = main(["demo", "--model", "ViT-B-32", "--pretrained", str(path), "--images", str(images),
                 "--pool", str(pool), "--out", str(out), "--layers", "1"])
    stdout = capsys.readouterr().out

    assert code == 0
    assert RANDOM_WEIGHTS_NOTE not in stdout
    report = read_report(out)
    assert report["random_weights"] is False
    assert report["note"] is None
    assert report["pretrained"] == str(path)
    assert len(list(out.glob("*_heatmap.png"))) == 3

    # The demo's numbers must come from the saved weights.
    reference = HookedCLIP.from_open_clip_model(clip)
    batch, _ = load_images(list_images(images), reference.preprocess)
    expected = direct_effect_shares(decompose(reference.visual, batch))["attention"]
    actual = torch.tensor(report["direct_effect_shares"]["attention"])
    assert torch.allclose(actual, expected.to(actual.dtype), atol=1e-4)


# -- failures ----------------------------------------------------------------------------------


def test_unavailable_weights_exit_2(tmp_path, monkeypatch, capsys):
    hf_home = tmp_path / "hf_home"
    hf_home.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    # huggingface_hub reads these variables when it is imported, which happened before this
    # test, so its module constants are set as well.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))

    connections = []

    def refuse_connection(sock, address):
        connections.append(address)
        raise OSError(f"test blocked a connection to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse_connection)

    # laion2b_s34b_b88k is a ViT-B-16 tag (the demo's default model and weights).
    code = main(["demo", "--model", "ViT-B-16", "--pretrained", "laion2b_s34b_b88k",
                 "--out", str(tmp_path / "out")])
    stderr = capsys.readouterr().err

    assert code == 2
    assert connections == []
    assert "Traceback" not in stderr
    assert "--pretrained random" in stderr
    assert "--pretrained PATH" in stderr
    message = stderr[stderr.index("textspan:"):].strip()
    assert "\n\n" not in message, message


@pytest.mark.parametrize(
    ("case", "expected_fragments"),
    [
        ("missing_images", ["does not exist"]),
        ("empty_images", ["no images"]),
        ("unknown_model", ["Unknown OpenCLIP model name", "ViT-B-33"]),
        ("one_image", ["at least 2 images"]),
        ("corrupt_checkpoint", ["could not be loaded into ViT-B-32", "garbage.pt"]),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, case, expected_fragments):
    images = tmp_path / "images"
    model = "ViT-B-32"
    if case == "empty_images":
        images.mkdir()
        (images / "notes.txt").write_text("not an image\n")
    elif case == "unknown_model":
        images = shipped_photos_dir()
        model = "ViT-B-33"
    elif case == "one_image":
        images.mkdir()
        shutil.copy(shipped_photos_dir() / "coffee.jpg", images)
    pretrained = "random"
    if case == "corrupt_checkpoint":
        images = shipped_photos_dir()
        pretrained = str(tmp_path / "garbage.pt")
        (tmp_path / "garbage.pt").write_bytes(b"random bytes, not a checkpoint" * 20)

    code = main(["demo", "--model", model, "--pretrained", pretrained, "--images", str(images),
                 "--out", str(tmp_path / "out")])
    stderr = capsys.readouterr().err

    assert code == 2
    assert "Traceback" not in stderr
    for fragment in expected_fragments:
        assert fragment in stderr, stderr
    if case not in ("unknown_model", "corrupt_checkpoint"):
        assert str(images) in stderr
