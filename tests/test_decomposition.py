"""Tests for textspan.decomposition on a tiny OpenCLIP model with random weights.

The references in this file are computed from cached activations and OpenCLIP's weights, not
from the library. A head's `per_term` term is the change in the embedding when the head's
output is removed from the final residual stream with the `ln_post` scale held fixed. The
`shared` terms follow equation 9 of Gandelsman, Efros and Steinhardt (ICLR 2024), appendix
A.1: `LN(x) = x * gamma / sigma - (mu * gamma / sigma - beta)`, with the second part split
equally among the head terms.
"""

from __future__ import annotations

import copy

import open_clip
import pytest
import torch
from open_clip.model import CLIPTextCfg, CLIPVisionCfg
from open_clip.transformer import LayerScale
from torch import nn

from hooked_clip import HookedViT
from textspan.decomposition import decompose, direct_effect_shares

N_LAYERS = 3
N_HEADS = 4  # width 64 / head_width 16
D_HEAD = 16
IMAGE_SIZE = 32
N_POSITIONS = 1 + (IMAGE_SIZE // 8) ** 2  # class token and a 4x4 grid of 8-pixel patches

# Maximum relative error of total() against encode_image: float32 rounding over 3 blocks
# stays near 1e-6, and float64 near 1e-15.
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
# Relative tolerance of float64 comparisons against the references written in this file.
REFERENCE_TOLERANCE = 1e-10


def build_tiny_clip(layer_scale: bool = False, seed: int = 0) -> open_clip.CLIP:
    """Build a CLIP with a 3-block, 4-head vision tower on 32x32 images, in eval mode.

    LayerNorm weights and biases, LayerScale gammas and the attention and MLP biases are
    random (OpenCLIP initialises them to 1, 0 or a constant), so that a term that drops a
    scale or a bias changes the result.
    """
    torch.manual_seed(seed)
    vision_cfg = CLIPVisionCfg(
        layers=N_LAYERS,
        width=64,
        head_width=D_HEAD,
        patch_size=8,
        image_size=IMAGE_SIZE,
        ls_init_value=0.5 if layer_scale else None,
    )
    text_cfg = CLIPTextCfg(layers=2, width=32, heads=2, context_length=77, vocab_size=49408)
    clip = open_clip.CLIP(embed_dim=32, vision_cfg=vision_cfg, text_cfg=text_cfg)

    with torch.no_grad():
        for module in clip.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.normal_(1, 0.3)
                module.bias.normal_(0, 0.3)
            elif isinstance(module, LayerScale):
                module.gamma.normal_(0.5, 0.2)
        for block in clip.visual.transformer.resblocks:
            block.attn.in_proj_bias.normal_(0, 0.1)
            block.attn.out_proj.bias.normal_(0, 0.1)
            block.mlp.c_fc.bias.normal_(0, 0.1)
            block.mlp.c_proj.bias.normal_(0, 0.1)
    return clip.eval()


def make_images(batch: int, dtype: torch.dtype = torch.float64, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator).to(dtype)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Return max |actual - expected| divided by max |expected|."""
    return float((actual - expected).abs().max() / expected.abs().max())


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float, label: str) -> None:
    """Assert a relative error below `tolerance`, with a message that names `label` instead of printing tensors."""
    assert actual.shape == expected.shape, f"{label}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    error = relative_error(actual, expected)
    assert error < tolerance, f"{label}: relative error {error:.3g} is not below {tolerance:g}"


@pytest.fixture(scope="module")
def plain_clip() -> open_clip.CLIP:
    return build_tiny_clip()


@pytest.fixture(scope="module")
def layer_scale_clip() -> open_clip.CLIP:
    return build_tiny_clip(layer_scale=True)


@pytest.fixture(scope="module")
def plain_clip64(plain_clip) -> open_clip.CLIP:
    return copy.deepcopy(plain_clip).double()


@pytest.fixture(scope="module")
def plain_model64(plain_clip) -> HookedViT:
    return HookedViT.from_open_clip_model(plain_clip, dtype=torch.float64)


def cache_activations(model: HookedViT, images: torch.Tensor):
    _, cache = model.run_with_cache(images)
    return cache


def final_residual(cache) -> torch.Tensor:
    """Return the class token's final residual stream (the input of ln_post), `[batch, d_model]`."""
    return cache[f"blocks.{N_LAYERS - 1}.hook_resid_post"][:, 0]


def final_scale(cache) -> torch.Tensor:
    """Return the ln_post standard deviation of the class token, `[batch, 1]`."""
    return cache["ln_final.hook_scale"][:, 0]


def embed_with_fixed_scale(clip: open_clip.CLIP, resid: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Apply ln_post with the given standard deviation instead of the one of `resid`, then the projection."""
    visual = clip.visual
    centred = resid - resid.mean(dim=-1, keepdim=True)
    return (centred / scale * visual.ln_post.weight + visual.ln_post.bias) @ visual.proj


def through_scale(clip: open_clip.CLIP, vector: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Map a residual-stream vector through `x * gamma / sigma @ P` (equation 9 without the offset)."""
    return (vector * clip.visual.ln_post.weight / scale) @ clip.visual.proj


def shared_offset(clip: open_clip.CLIP, resid: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Return `(beta - mu * gamma / sigma) @ P` of equation 9, `[batch, d_embed]`."""
    gamma, beta = clip.visual.ln_post.weight, clip.visual.ln_post.bias
    mean = resid.mean(dim=-1, keepdim=True)
    return (beta - mean * gamma / scale) @ clip.visual.proj


def attention_bias(cache, layer: int) -> torch.Tensor:
    """Return the attention output bias of `layer` as the block adds it (LayerScale included)."""
    return cache[f"blocks.{layer}.hook_attn_out"][:, 0] - cache[f"blocks.{layer}.attn.hook_result"][:, 0].sum(dim=1)


# -- total -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mean_and_bias", ["per_term", "shared"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("layer_scale", [False, True], ids=["plain", "layer_scale"])
def test_total_equals_encode_image(plain_clip, layer_scale_clip, layer_scale, dtype, mean_and_bias):
    clip = layer_scale_clip if layer_scale else plain_clip
    model = HookedViT.from_open_clip_model(clip, dtype=dtype)
    reference = copy.deepcopy(clip).to(dtype)
    images = make_images(4, dtype)

    decomposition = decompose(model, images, mean_and_bias=mean_and_bias)
    with torch.no_grad():
        expected = reference.encode_image(images)

    assert decomposition.total().dtype == dtype
    assert_close(decomposition.total(), expected, TOLERANCE[dtype], "total()")


# -- per_term ----------------------------------------------------------------------------------


def test_per_term_head_is_ablation(plain_clip64, plain_model64):
    images = make_images(3)
    decomposition = decompose(plain_model64, images, mean_and_bias="per_term")
    cache = cache_activations(plain_model64, images)
    resid, scale = final_residual(cache), final_scale(cache)

    with torch.no_grad():
        full = embed_with_fixed_scale(plain_clip64, resid, scale)
        assert_close(full, plain_clip64.encode_image(images), REFERENCE_TOLERANCE, "reference readout")

        for layer in range(N_LAYERS):
            results = cache[f"blocks.{layer}.attn.hook_result"][:, 0]
            for head in range(N_HEADS):
                ablated = embed_with_fixed_scale(plain_clip64, resid - results[:, head], scale)
                expected = full - ablated
                actual = decomposition.heads[:, layer, head]
                assert_close(actual, expected, REFERENCE_TOLERANCE, f"head L{layer}.H{head}")


def test_per_term_other_terms_are_ablations(plain_clip64, plain_model64):
    images = make_images(3)
    decomposition = decompose(plain_model64, images, mean_and_bias="per_term")
    cache = cache_activations(plain_model64, images)
    resid, scale = final_residual(cache), final_scale(cache)

    with torch.no_grad():
        full = embed_with_fixed_scale(plain_clip64, resid, scale)

        def removal_effect(part: torch.Tensor) -> torch.Tensor:
            return full - embed_with_fixed_scale(plain_clip64, resid - part, scale)

        embed_effect = removal_effect(cache["hook_embed"][:, 0])
        assert_close(decomposition.embed, embed_effect, REFERENCE_TOLERANCE, "embed")

        for layer in range(N_LAYERS):
            mlp_effect = removal_effect(cache[f"blocks.{layer}.hook_mlp_out"][:, 0])
            assert_close(decomposition.mlps[:, layer], mlp_effect, REFERENCE_TOLERANCE, f"mlp L{layer}")

            bias_effect = removal_effect(attention_bias(cache, layer))
            assert_close(decomposition.attn_bias[:, layer], bias_effect, REFERENCE_TOLERANCE, f"attn_bias L{layer}")

        ln_bias = plain_clip64.visual.ln_post.bias @ plain_clip64.visual.proj
        assert_close(decomposition.ln_bias, ln_bias.expand_as(decomposition.ln_bias), REFERENCE_TOLERANCE, "ln_bias")


# -- shared ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_scale", [False, True], ids=["plain", "layer_scale"])
def test_shared_terms_follow_equation_9(plain_clip, layer_scale_clip, layer_scale):
    clip = layer_scale_clip if layer_scale else plain_clip
    clip64 = copy.deepcopy(clip).double()
    model = HookedViT.from_open_clip_model(clip, dtype=torch.float64)
    images = make_images(3)
    decomposition = decompose(model, images, mean_and_bias="shared")
    cache = cache_activations(model, images)
    resid, scale = final_residual(cache), final_scale(cache)

    with torch.no_grad():
        offset_share = shared_offset(clip64, resid, scale) / (N_LAYERS * N_HEADS)
        for layer in range(N_LAYERS):
            bias_share = through_scale(clip64, attention_bias(cache, layer), scale) / N_HEADS
            results = cache[f"blocks.{layer}.attn.hook_result"][:, 0]
            for head in range(N_HEADS):
                expected = through_scale(clip64, results[:, head], scale) + offset_share + bias_share
                actual = decomposition.heads[:, layer, head]
                assert_close(actual, expected, REFERENCE_TOLERANCE, f"head L{layer}.H{head}")

        for layer in range(N_LAYERS):
            expected_mlp = through_scale(clip64, cache[f"blocks.{layer}.hook_mlp_out"][:, 0], scale)
            assert_close(decomposition.mlps[:, layer], expected_mlp, REFERENCE_TOLERANCE, f"mlp L{layer}")

        expected_embed = through_scale(clip64, cache["hook_embed"][:, 0], scale)
        assert_close(decomposition.embed, expected_embed, REFERENCE_TOLERANCE, "embed")

    assert bool((decomposition.attn_bias == 0).all())
    assert bool((decomposition.ln_bias == 0).all())


# -- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mean_and_bias", ["per_term", "shared"])
def test_tokens_sum_to_head_terms(plain_model64, mean_and_bias):
    images = make_images(2)
    decomposition = decompose(plain_model64, images, token_layers=[1, 2], mean_and_bias=mean_and_bias)

    chosen = decomposition.tokens(layers=[1, 2], heads=[0, 2])
    expected = decomposition.heads[:, [1, 2]][:, :, [0, 2]].sum(dim=(1, 2))
    assert chosen.shape == (2, N_POSITIONS, expected.shape[-1])
    assert_close(chosen.sum(dim=1), expected, REFERENCE_TOLERANCE, "tokens of layers 1, 2 and heads 0, 2")

    every_head = decomposition.tokens()
    expected_every_head = decomposition.heads[:, [1, 2]].sum(dim=(1, 2))
    assert_close(every_head.sum(dim=1), expected_every_head, REFERENCE_TOLERANCE, "tokens of every head")


def test_tokens_unrequested_layer_raises(plain_model64):
    images = make_images(2)
    with_tokens = decompose(plain_model64, images, token_layers=[1, 2])
    without_tokens = decompose(plain_model64, images)

    with pytest.raises(ValueError):
        with_tokens.tokens(layers=[0])
    with pytest.raises(ValueError):
        without_tokens.tokens()


def test_tokens_head_out_of_range_raises(plain_model64):
    decomposition = decompose(plain_model64, make_images(2), token_layers=[1])
    with pytest.raises(ValueError):
        decomposition.tokens(layers=[1], heads=[N_HEADS])


@pytest.mark.parametrize("mean_and_bias", ["per_term", "shared"])
def test_tokens_match_pattern_and_values(plain_clip64, plain_model64, mean_and_bias):
    layer, head = 1, 3
    images = make_images(2)
    decomposition = decompose(plain_model64, images, token_layers=[layer], mean_and_bias=mean_and_bias)
    cache = cache_activations(plain_model64, images)
    resid, scale = final_residual(cache), final_scale(cache)

    with torch.no_grad():
        # Equation 5 of the paper: token i contributes alpha_i W_VO LN(z_i), with alpha the
        # class-token row of the attention pattern.
        class_row = cache[f"blocks.{layer}.attn.hook_pattern"][:, head, 0]  # [batch, pos]
        values = cache[f"blocks.{layer}.attn.hook_v"][:, :, head]  # [batch, pos, d_head]
        out_proj = plain_clip64.visual.transformer.resblocks[layer].attn.out_proj.weight
        W_O = out_proj[:, head * D_HEAD : (head + 1) * D_HEAD]  # [d_model, d_head]
        token_outputs = class_row[..., None] * values @ W_O.T  # [batch, pos, d_model]

        head_output = cache[f"blocks.{layer}.attn.hook_result"][:, 0, head]
        assert_close(token_outputs.sum(dim=1), head_output, REFERENCE_TOLERANCE, "reference token outputs")

        token_scale = scale[:, None, :]
        if mean_and_bias == "per_term":
            centred = token_outputs - token_outputs.mean(dim=-1, keepdim=True)
            expected = through_scale(plain_clip64, centred, token_scale)
        else:
            head_share = shared_offset(plain_clip64, resid, scale) / (N_LAYERS * N_HEADS)
            head_share = head_share + through_scale(plain_clip64, attention_bias(cache, layer), scale) / N_HEADS
            expected = through_scale(plain_clip64, token_outputs, token_scale) + head_share[:, None] / N_POSITIONS

    actual = decomposition.tokens(layers=[layer], heads=[head])
    assert_close(actual, expected, REFERENCE_TOLERANCE, f"tokens of L{layer}.H{head}")


# -- shares, batches and input checks ---------------------------------------------------------


@pytest.mark.parametrize("mean_and_bias", ["per_term", "shared"])
def test_direct_effect_shares_sum_to_one(plain_model64, mean_and_bias):
    decomposition = decompose(plain_model64, make_images(3), mean_and_bias=mean_and_bias)
    shares = direct_effect_shares(decomposition)

    total = shares["embed"] + shares["attention"].sum() + shares["mlp"].sum() + shares["ln_bias"]
    assert abs(float(total) - 1) < 1e-10
    assert shares["attention"].shape == (N_LAYERS,)
    assert shares["heads"].shape == (N_LAYERS, N_HEADS)


@pytest.mark.parametrize("mean_and_bias", ["per_term", "shared"])
def test_batch_equals_single_images(plain_model64, mean_and_bias):
    images = make_images(3)
    batch = decompose(plain_model64, images, token_layers=[0, 2], mean_and_bias=mean_and_bias)

    for index in range(images.shape[0]):
        alone = decompose(plain_model64, images[index : index + 1], token_layers=[0, 2], mean_and_bias=mean_and_bias)
        pairs = {
            "embed": (batch.embed[index], alone.embed[0]),
            "heads": (batch.heads[index], alone.heads[0]),
            "attn_bias": (batch.attn_bias[index], alone.attn_bias[0]),
            "mlps": (batch.mlps[index], alone.mlps[0]),
            "ln_bias": (batch.ln_bias[index], alone.ln_bias[0]),
            "tokens": (batch.tokens()[index], alone.tokens()[0]),
        }
        for name, (from_batch, from_alone) in pairs.items():
            assert torch.allclose(from_batch, from_alone, rtol=1e-10, atol=1e-12), (index, name)


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"token_layers": [N_LAYERS]}, id="layer_too_large"),
        pytest.param({"token_layers": [-N_LAYERS - 1]}, id="negative_layer_too_small"),
        pytest.param({"mean_and_bias": "mean"}, id="unknown_mean_and_bias"),
    ],
)
def test_decompose_rejects_bad_arguments(plain_model64, arguments):
    with pytest.raises(ValueError):
        decompose(plain_model64, make_images(2), **arguments)


def test_decompose_rejects_nan_images(plain_model64):
    images = make_images(2)
    images[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError):
        decompose(plain_model64, images)


def test_decompose_rejects_3d_tensor(plain_model64):
    with pytest.raises(ValueError):
        decompose(plain_model64, make_images(1)[0])
