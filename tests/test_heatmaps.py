"""Text heatmaps: per-token scores, bias normalisation, relative and per-head maps, overlays."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from conftest import tiny_clip

from hooked_clip import HookedViT
from hooked_clip.hooked_clip import HookedCLIP
from textspan.decomposition import decompose
from textspan.heatmaps import head_heatmaps, relative_heatmap, save_head_overlays, save_overlay, text_heatmap, upsample
from textspan.text_span import text_span_heads


@pytest.fixture(scope="module")
def model():
    return HookedCLIP.from_open_clip_model(tiny_clip(image_size=(32, 48)), open_clip.get_tokenizer("ViT-B-32"))


@pytest.fixture(scope="module")
def images():
    return torch.randn(3, 3, 32, 48, generator=torch.Generator().manual_seed(0))


def test_heatmap_shape_non_square(model, images):
    maps = text_heatmap(model, images, ["a cat", "a dog"])
    assert tuple(maps.shape) == (3, 2, 4, 6)


def test_heatmap_plus_class_position_sums(model, images):
    texts = torch.nn.functional.normalize(torch.randn(2, 24), dim=-1)
    maps = text_heatmap(model, images, texts)
    decomposition = decompose(model.visual, images, token_layers=range(3))
    class_position = decomposition.tokens()[:, 0] @ texts.T
    expected = decomposition.heads.sum(dim=(1, 2)) @ texts.T
    torch.testing.assert_close(maps.sum(dim=(2, 3)) + class_position, expected, rtol=1e-4, atol=1e-5)


def test_batch_equals_single_images(model, images):
    together = text_heatmap(model, images, ["a red car"])
    for index in range(images.shape[0]):
        alone = text_heatmap(model, images[index : index + 1], ["a red car"])
        torch.testing.assert_close(together[index], alone[0], rtol=1e-4, atol=1e-6)


def test_bias_normalisation_subtracts_mean(model, images):
    classes = ["a cat", "a dog", "a bird"]
    normalised = text_heatmap(model, images, ["a cat"], reference_texts=classes)
    raw = text_heatmap(model, images, ["a cat"])
    reference = text_heatmap(model, images, classes)
    torch.testing.assert_close(normalised[:, 0], raw[:, 0] - reference.mean(dim=1), rtol=1e-4, atol=1e-6)


def test_relative_heatmap_is_difference(model, images):
    relative = relative_heatmap(model, images, "a cat", "a dog")
    both = text_heatmap(model, images, ["a cat", "a dog"])
    torch.testing.assert_close(relative, both[:, 0] - both[:, 1], rtol=1e-4, atol=1e-6)


def test_head_heatmaps_pick_extreme_texts(model, images):
    generator = torch.Generator().manual_seed(1)
    pool = torch.nn.functional.normalize(torch.randn(40, 24, generator=generator), dim=-1)
    texts = [f"text {index}" for index in range(40)]
    decomposition = decompose(model.visual, images, token_layers=[2])
    span = text_span_heads(decomposition.heads[:, [2]], pool, 2, [2], texts=texts, progress=False)[1]
    maps = head_heatmaps(decomposition, span, pool, (4, 6))

    coefficients = decomposition.heads[:, 2, 1] @ pool[span.indices].T
    assert maps.top_texts == [span.texts[i] for i in coefficients.argmax(dim=1).tolist()]
    assert maps.bottom_texts == [span.texts[i] for i in coefficients.argmin(dim=1).tolist()]
    first = coefficients[0].argmax()
    expected = decomposition.token_scores(pool[span.indices], layers=[2], heads=[1])[0, 0, 0, 1:, first]
    torch.testing.assert_close(maps.top[0].flatten(), expected)


def test_upsample_size(model, images):
    maps = text_heatmap(model, images, ["a cat"])
    assert tuple(upsample(maps, (64, 96)).shape) == (3, 1, 64, 96)


def test_overlay_written_atomically(model, images, tmp_path):
    maps = text_heatmap(model, images, ["a cat"])
    target = tmp_path / "cat.png"
    save_overlay(np.random.default_rng(0).random((32, 48, 3)), maps[0, 0], target, '"a cat", layer 2, head 1')
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [path.name for path in tmp_path.iterdir()] == ["cat.png"]


def test_strings_need_text_tower(model, images):
    with pytest.raises(TypeError, match="HookedCLIP"):
        text_heatmap(model.visual, images, ["a cat"])


@pytest.mark.parametrize(
    ("texts", "message"),
    [([], "empty"), (torch.randn(2, 7), "width 7"), (torch.full((1, 24), float("nan")), "NaN")],
    ids=["empty", "width", "nan"],
)
def test_bad_texts_rejected(model, images, texts, message):
    with pytest.raises(ValueError, match=message):
        text_heatmap(model, images, texts)


def test_vision_model_accepts_embeddings(images):
    visual = HookedViT.from_open_clip_model(tiny_clip(image_size=(32, 48)))
    maps = text_heatmap(visual, images, torch.randn(2, 24), layers=[-1])
    assert tuple(maps.shape) == (3, 2, 4, 6)


def test_head_overlays_written(model, images, tmp_path):
    generator = torch.Generator().manual_seed(2)
    pool = torch.nn.functional.normalize(torch.randn(20, 24, generator=generator), dim=-1)
    decomposition = decompose(model.visual, images, token_layers=[1])
    span = text_span_heads(decomposition.heads[:, [1]], pool, 2, [1], texts=[f"t{i}" for i in range(20)],
                           progress=False)[0]
    maps = head_heatmaps(decomposition, span, pool, (4, 6))
    pictures = [np.zeros((32, 48, 3)) for _ in range(3)]
    written = save_head_overlays(maps, pictures, tmp_path, ["a", "b", "c"])
    assert sorted(path.name for path in written) == sorted(
        f"{name}_L1H0_{which}.png" for name in "abc" for which in ("top", "bottom")
    )
    with pytest.raises(ValueError, match="one each"):
        save_head_overlays(maps, pictures[:2], tmp_path, ["a", "b"])


def test_overlay_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\[height, width, 3\]"):
        save_overlay(np.zeros((32, 48)), torch.zeros(4, 6), tmp_path / "x.png", "title")
    with pytest.raises(ValueError, match=r"\[rows, cols\]"):
        save_overlay(np.zeros((32, 48, 3)), torch.zeros(1, 4, 6), tmp_path / "x.png", "title")
    with pytest.raises(ValueError, match="size"):
        upsample(torch.zeros(4, 6), (0, 10))
