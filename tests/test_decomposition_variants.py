"""Exact decomposition on every supported tower variant, and the lazy text-score contraction."""

from __future__ import annotations

import pytest
import torch
from conftest import relative_error, tiny_clip

from hooked_clip import HookedViT
from textspan.decomposition import decompose

VARIANTS = {
    "class-token": {},
    "avg-pool": {"pool_type": "avg"},
    "ln-after-pool": {"final_ln_after_pool": True},
    "avg-ln-after-pool": {"pool_type": "avg", "final_ln_after_pool": True},
    "no-ln-pre-layer-scale": {"no_ln_pre": True, "ls_init_value": 0.5},
    "non-square": {"image_size": (32, 48)},
}
MODES = ["per_term", "shared"]


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request):
    clip = tiny_clip(**VARIANTS[request.param]).double()
    model = HookedViT.from_open_clip_model(clip)
    images = torch.randn(3, 3, *model.cfg.image_size, dtype=torch.float64)
    with torch.no_grad():
        embedding = clip.encode_image(images)
    return model, images, embedding


@pytest.mark.parametrize("mode", MODES)
def test_total_equals_embedding(variant, mode):
    model, images, embedding = variant
    decomposition = decompose(model, images, mean_and_bias=mode)
    assert relative_error(decomposition.total(), embedding) < 1e-12


@pytest.mark.parametrize("mode", MODES)
def test_tokens_sum_to_heads(variant, mode):
    model, images, _ = variant
    decomposition = decompose(model, images, token_layers=[0, -1], mean_and_bias=mode)
    per_token = decomposition.tokens(heads=[1, 3])
    expected = decomposition.heads[:, [0, 2]][:, :, [1, 3]].sum(dim=(1, 2))
    assert per_token.shape[1] == model.cfg.n_ctx
    assert relative_error(per_token.sum(dim=1), expected) < 1e-12


@pytest.mark.parametrize("mode", MODES)
def test_token_scores_match_tokens(variant, mode):
    model, images, _ = variant
    decomposition = decompose(model, images, token_layers=[1, 2], mean_and_bias=mode)
    texts = torch.randn(5, model.cfg.d_embed, dtype=torch.float64)
    scores = decomposition.token_scores(texts)
    assert tuple(scores.shape) == (3, 2, model.cfg.n_heads, model.cfg.n_ctx, 5)
    for slot, layer in enumerate([1, 2]):
        for head in range(model.cfg.n_heads):
            expected = decomposition.tokens(layers=[layer], heads=[head]) @ texts.T
            assert relative_error(scores[:, slot, head], expected) < 1e-12


def test_float32_within_tolerance():
    clip = tiny_clip(pool_type="avg")
    model = HookedViT.from_open_clip_model(clip)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        embedding = clip.encode_image(images)
    assert relative_error(decompose(model, images).total(), embedding) < 1e-5


def test_bfloat16_accumulates_in_float32():
    clip = tiny_clip()
    model = HookedViT.from_open_clip_model(clip, dtype=torch.bfloat16)
    images = torch.randn(2, 3, 32, 32)
    decomposition = decompose(model, images)
    with torch.no_grad():
        embedding = model(images).float()
    assert decomposition.heads.dtype == torch.float32
    # The terms are exact for the bfloat16 activations; the sum differs from the bfloat16
    # embedding by its rounding (8 bits of mantissa, about 0.4 %).
    assert relative_error(decomposition.total(), embedding) < 2e-2


def test_token_scores_bad_width(variant):
    model, images, _ = variant
    decomposition = decompose(model, images, token_layers=[0])
    with pytest.raises(ValueError, match="width 7"):
        decomposition.token_scores(torch.randn(2, 7, dtype=torch.float64))


def test_tokens_accept_negative_layers(variant):
    model, images, _ = variant
    decomposition = decompose(model, images, token_layers=[-1])
    torch.testing.assert_close(decomposition.tokens(layers=[-1]), decomposition.tokens(layers=[2]))
