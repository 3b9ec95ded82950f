"""Tests of the attention and gradient heatmap baselines on tiny random-weight models."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_clip

from hooked_clip import HookedViT
from hooked_clip.components import has_hooks
from textspan.baselines import (
    HEATMAP_METHODS,
    attention_gradients,
    attention_rollout,
    chefer_relevance,
    grad_cam,
    pattern_hook_name,
    raw_attention,
)
from textspan.segmentation import SegmentationMetrics, heatmap_to_pixels

GRID = (4, 4)
D_EMBED = 24


@pytest.fixture(scope="module")
def model() -> HookedViT:
    return HookedViT.from_open_clip_model(tiny_clip(seed=1), dtype=torch.float64)


@pytest.fixture(scope="module")
def one_layer_model() -> HookedViT:
    return HookedViT.from_open_clip_model(tiny_clip(seed=2, layers=1), dtype=torch.float64)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.fixture(scope="module")
def texts() -> torch.Tensor:
    return torch.randn(3, D_EMBED, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def cached_patterns(model: HookedViT, images: torch.Tensor) -> list[torch.Tensor]:
    names = [pattern_hook_name(layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(images, names_filter=names)
    return [cache[name] for name in names]


def similarity_with_pattern_offset(model, images, text, layer, index, offset) -> torch.Tensor:
    """Return `<encode_image(x), t>` with `offset` added to one entry of a layer's attention pattern."""

    def shift(pattern, hook):
        pattern = pattern.clone()
        pattern[index] += offset
        return pattern

    with torch.no_grad():
        embedding = model.run_with_hooks(images, fwd_hooks=[(pattern_hook_name(layer), shift)])
    return (embedding * text).sum(dim=-1)


# -- shapes and ranges -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HEATMAP_METHODS))
def test_method_shape_and_sign(model, images, texts, name):
    heatmaps = HEATMAP_METHODS[name](model, images, texts)

    assert heatmaps.shape == (3, *GRID)
    assert heatmaps.dtype == torch.float64
    assert bool(torch.isfinite(heatmaps).all())
    assert float(heatmaps.min()) >= 0.0
    assert not heatmaps.requires_grad


def test_gradcam_range_is_unit_interval(model, images, texts):
    heatmaps = grad_cam(model, images, texts)

    maxima = heatmaps.amax(dim=(1, 2))

    assert float(maxima.max()) <= 1.0
    assert bool(((maxima > 0.99) | (maxima == 0)).all())


@pytest.mark.parametrize("name", sorted(HEATMAP_METHODS))
def test_batch_equals_single_images(model, images, texts, name):
    method = HEATMAP_METHODS[name]
    batched = method(model, images, texts)

    for index in range(images.shape[0]):
        single = method(model, images[index : index + 1], texts[index])
        torch.testing.assert_close(batched[index : index + 1], single, rtol=1e-6, atol=1e-7)


def test_shared_text_embedding_broadcasts(model, images, texts):
    shared = chefer_relevance(model, images, texts[0])
    repeated = chefer_relevance(model, images, texts[0].expand(3, -1))

    torch.testing.assert_close(shared, repeated)


# -- attention only ------------------------------------------------------------------------------


def test_raw_attention_equals_cached_row(model, images):
    last_pattern = cached_patterns(model, images)[-1]
    expected = last_pattern[:, :, 0, 1:].mean(dim=1).reshape(3, *GRID)

    torch.testing.assert_close(raw_attention(model, images), expected)


def test_raw_attention_ignores_text(model, images, texts):
    torch.testing.assert_close(raw_attention(model, images, texts), raw_attention(model, images, -texts))


def test_rollout_one_layer_by_hand(one_layer_model, images):
    (pattern,) = cached_patterns(one_layer_model, images)
    n_ctx = pattern.shape[-1]

    attention = pattern.mean(dim=1) + torch.eye(n_ctx, dtype=pattern.dtype)
    attention = attention / attention.sum(dim=-1, keepdim=True)
    expected = attention[:, 0, 1:].reshape(3, *GRID)

    torch.testing.assert_close(attention_rollout(one_layer_model, images), expected)


def test_rollout_three_layers_by_hand(model, images):
    patterns = cached_patterns(model, images)
    n_ctx = patterns[0].shape[-1]
    identity = torch.eye(n_ctx, dtype=torch.float64)

    augmented = []
    for pattern in patterns:
        attention = pattern.mean(dim=1) + identity
        augmented.append(attention / attention.sum(dim=-1, keepdim=True))
    expected = augmented[2] @ augmented[1] @ augmented[0]
    from_second = augmented[2] @ augmented[1]

    torch.testing.assert_close(attention_rollout(model, images), expected[:, 0, 1:].reshape(3, *GRID))
    torch.testing.assert_close(
        attention_rollout(model, images, start_layer=1), from_second[:, 0, 1:].reshape(3, *GRID)
    )


def test_rollout_patch_mass_below_one(model, images):
    patch_mass = attention_rollout(model, images).sum(dim=(1, 2))

    assert bool((patch_mass > 0).all())
    assert bool((patch_mass < 1).all())


def test_mean_pooling_reads_patch_rows(images):
    avg_model = HookedViT.from_open_clip_model(tiny_clip(seed=3, pool_type="avg"), dtype=torch.float64)
    last_pattern = cached_patterns(avg_model, images)[-1]
    expected = last_pattern[:, :, 1:, 1:].mean(dim=(1, 2)).reshape(3, *GRID)

    torch.testing.assert_close(raw_attention(avg_model, images), expected)


# -- gradients -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, index",
    [(2, (0, 1, 0, 5)), (2, (0, 3, 0, 0)), (1, (0, 0, 0, 7)), (0, (0, 2, 9, 3)), (0, (0, 1, 16, 16))],
)
def test_pattern_gradients_match_finite_differences(model, images, texts, layer, index):
    image, text = images[:1], texts[:1]
    _, gradients = attention_gradients(model, image, text[0])
    step = 1e-5

    plus = similarity_with_pattern_offset(model, image, text, layer, index, step)
    minus = similarity_with_pattern_offset(model, image, text, layer, index, -step)
    finite_difference = float((plus - minus)[0] / (2 * step))

    assert gradients[layer][index] == pytest.approx(finite_difference, rel=1e-6, abs=1e-9)


def test_cosine_gradients_match_finite_differences(model, images, texts):
    image, text = images[:1], texts[0]
    _, gradients = attention_gradients(model, image, text, normalize=True)
    index, step = (0, 2, 0, 4), 1e-5

    def cosine(offset: float) -> float:
        def shift(pattern, hook):
            pattern = pattern.clone()
            pattern[index] += offset
            return pattern

        with torch.no_grad():
            embedding = model.run_with_hooks(image, fwd_hooks=[(pattern_hook_name(2), shift)])[0]
        return float(embedding @ text / embedding.norm())

    finite_difference = (cosine(step) - cosine(-step)) / (2 * step)
    assert float(gradients[2][index]) == pytest.approx(finite_difference, rel=1e-6, abs=1e-9)


def test_pattern_gradients_frozen_parameters(images, texts):
    frozen = HookedViT.from_open_clip_model(tiny_clip(seed=1), dtype=torch.float64).requires_grad_(False)
    reference = HookedViT.from_open_clip_model(tiny_clip(seed=1), dtype=torch.float64)

    _, frozen_gradients = attention_gradients(frozen, images, texts)
    _, gradients = attention_gradients(reference, images, texts)

    torch.testing.assert_close(frozen_gradients[-1], gradients[-1])


def test_chefer_one_layer_by_hand(one_layer_model, images, texts):
    (pattern,), (gradient,) = attention_gradients(one_layer_model, images, texts)
    expected = (gradient * pattern).clamp(min=0).mean(dim=1)[:, 0, 1:].reshape(3, *GRID)

    torch.testing.assert_close(chefer_relevance(one_layer_model, images, texts), expected)


def test_chefer_three_layers_by_hand(model, images, texts):
    patterns, gradients = attention_gradients(model, images, texts)
    relevance = torch.eye(patterns[0].shape[-1], dtype=torch.float64).expand(3, -1, -1)
    for pattern, gradient in zip(patterns, gradients):
        relevance = relevance + torch.einsum(
            "bqk,bkj->bqj", (gradient * pattern).clamp(min=0).mean(dim=1), relevance
        )

    expected = relevance[:, 0, 1:].reshape(3, *GRID)
    torch.testing.assert_close(chefer_relevance(model, images, texts), expected)


def planted_model_and_image(patch: int) -> tuple[HookedViT, torch.Tensor]:
    """Build a 1-layer model whose attention values are zero at every token except one patch.

    With no positional embedding, a zero class embedding, zero LayerNorm biases before the
    attention and zero value bias, a black patch gives a zero value vector, so only `patch`
    writes into the class token.
    """
    model = HookedViT.from_open_clip_model(tiny_clip(seed=4, layers=1), dtype=torch.float64)
    with torch.no_grad():
        model.embed.W_pos.zero_()
        model.embed.class_embedding.zero_()
        model.ln_pre.b.zero_()
        model.blocks[0].ln1.b.zero_()
        model.blocks[0].attn.b_V.zero_()

    image = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
    row, col = divmod(patch, GRID[1])
    image[:, :, 8 * row : 8 * row + 8, 8 * col : 8 * col + 8] = torch.randn(
        3, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    return model, image


def test_chefer_planted_patch_only(texts):
    patch = 6
    model, image = planted_model_and_image(patch)
    text = texts[0]

    _, (gradient,) = attention_gradients(model, image, text)
    positive = chefer_relevance(model, image, text).flatten()
    negative = chefer_relevance(model, image, -text).flatten()
    others = [index for index in range(16) if index != patch]

    assert float(gradient[0, :, 0, 1 + patch].abs().max()) > 0
    assert float(gradient[0, :, 0, [1 + index for index in others]].abs().max()) == 0.0
    assert float(positive[others].abs().max()) == 0.0
    assert float(negative[others].abs().max()) == 0.0
    assert float(positive[patch] + negative[patch]) > 0


def test_gradcam_by_hand(model, images, texts):
    (pattern,), (gradient,) = attention_gradients(model, images, texts, layers=[2])
    row, row_gradient = pattern[:, :, 0, 1:], gradient[:, :, 0, 1:]
    weights = row_gradient.mean(dim=-1, keepdim=True)
    cam = (weights * row).sum(dim=1).clamp(min=0)
    cam = cam - cam.amin(dim=-1, keepdim=True)
    cam = cam / (cam.amax(dim=-1, keepdim=True) + 1e-7)

    torch.testing.assert_close(grad_cam(model, images, texts), cam.reshape(3, *GRID), rtol=1e-5, atol=1e-6)


def test_gradcam_leaves_no_hooks_or_gradients(images, texts):
    model = HookedViT.from_open_clip_model(tiny_clip(seed=1), dtype=torch.float64)
    grad_cam(model, images, texts)

    assert not has_hooks(model.blocks[-1].attn.hook_pattern)
    assert all(parameter.grad is None for parameter in model.parameters())


def test_gradcam_under_no_grad(model, images, texts):
    expected = grad_cam(model, images, texts)
    with torch.no_grad():
        inside = grad_cam(model, images, texts)

    torch.testing.assert_close(inside, expected)


# -- errors and evaluation -----------------------------------------------------------------------


@pytest.mark.parametrize("method", [chefer_relevance, grad_cam])
def test_text_embedding_wrong_width(model, images, method):
    with pytest.raises(ValueError, match="width 23"):
        method(model, images, torch.randn(23, dtype=torch.float64))


def test_text_embedding_wrong_batch(model, images):
    with pytest.raises(ValueError, match="2 rows for 3 images"):
        chefer_relevance(model, images, torch.randn(2, D_EMBED, dtype=torch.float64))


def test_text_embedding_not_finite(model, images):
    text = torch.full((D_EMBED,), float("nan"), dtype=torch.float64)
    with pytest.raises(ValueError, match="NaN"):
        chefer_relevance(model, images, text)


def test_start_layer_out_of_range(model, images, texts):
    with pytest.raises(ValueError, match="start_layer=3"):
        attention_rollout(model, images, start_layer=3)
    with pytest.raises(ValueError, match="start_layer=-1"):
        chefer_relevance(model, images, texts, start_layer=-1)


def test_methods_share_one_evaluation(model, images, texts):
    masks = torch.zeros(3, 32, 32, dtype=torch.bool)
    masks[:, 8:24, 8:24] = True

    for name, method in HEATMAP_METHODS.items():
        metrics = SegmentationMetrics()
        metrics.update(heatmap_to_pixels(method(model, images, texts), 32), masks)
        result = metrics.compute()

        assert result["n_images"] == 3, name
        for key in ("pixel_accuracy", "mIoU", "mAP"):
            assert 0.0 <= result[key] <= 1.0, (name, key)
