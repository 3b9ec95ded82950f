"""HookedViT: parity with OpenCLIP, hook points, interventions, conversion and input checks."""

from __future__ import annotations

import collections
import logging

import open_clip
import pytest
import torch
from conftest import randomise_norms, relative_error, tiny_clip
from transformer_lens import ActivationCache

from hooked_clip import HookedViT, WeightConversionError, convert_open_clip_vision_weights
from hooked_clip.config import HookedViTConfig

PARITY_MODELS = ["ViT-B-32", "ViT-B-16", "ViT-B-32-quickgelu", "ViT-M-16-alt"]


def assert_parity(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-5) -> None:
    """Float32 parity: rtol and atol of `tolerance` relative to the output scale."""
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance * scale)


@pytest.fixture(scope="module", params=PARITY_MODELS)
def named_model(request):
    torch.manual_seed(0)
    clip = randomise_norms(open_clip.create_model(request.param, pretrained=None), seed=1)
    return request.param, clip, HookedViT.from_open_clip_model(clip)


def test_parity_named_models(named_model):
    _, clip, model = named_model
    images = torch.randn(2, 3, *model.cfg.image_size)
    with torch.no_grad():
        assert_parity(model(images), clip.encode_image(images))


def test_residuals_match_forward_intermediates(named_model):
    _, clip, model = named_model
    images = torch.randn(2, 3, *model.cfg.image_size)
    with torch.no_grad():
        intermediates = clip.visual.forward_intermediates(
            images, output_fmt="NLC", output_extra_tokens=True, intermediates_only=True
        )
        _, cache = model.run_with_cache(images, names_filter=lambda name: name.endswith("hook_resid_post"))
    for layer in range(model.cfg.n_layers):
        expected = torch.cat(
            [intermediates["image_intermediates_prefix"][layer], intermediates["image_intermediates"][layer]], dim=1
        )
        assert_parity(cache[f"blocks.{layer}.hook_resid_post"], expected)


def test_config_read_from_module(named_model):
    name, clip, model = named_model
    cfg = model.cfg
    visual = clip.visual
    assert cfg.n_layers == len(visual.transformer.resblocks)
    assert cfg.d_model == visual.transformer.width
    assert cfg.n_heads == visual.transformer.resblocks[0].attn.num_heads
    assert cfg.act_fn == ("quick_gelu" if "quickgelu" in name else "gelu")
    assert cfg.layer_scale == (name == "ViT-M-16-alt")


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"image_size": (32, 48)},
        {"ls_init_value": 0.5},
        {"patch_size": (8, 4), "image_size": (32, 24)},
        {"pool_type": "avg"},
        {"final_ln_after_pool": True},
        {"final_ln_after_pool": True, "pool_type": "avg"},
        {"no_ln_pre": True},
    ],
    ids=["square", "non-square-image", "layer-scale", "non-square-patch", "avg-pool", "ln-after-pool",
         "avg-ln-after-pool", "no-ln-pre"],
)
def test_parity_tiny_configs(overrides):
    clip = tiny_clip(**overrides)
    model = HookedViT.from_open_clip_model(clip)
    images = torch.randn(3, 3, *model.cfg.image_size)
    with torch.no_grad():
        assert_parity(model(images), clip.encode_image(images))


def test_resized_positions_match_open_clip():
    from open_clip.model import resize_pos_embed

    clip = tiny_clip()
    resized_clip = tiny_clip(image_size=48)
    state_dict = {key: value.clone() for key, value in clip.state_dict().items()}
    resize_pos_embed(state_dict, resized_clip)
    resized_clip.load_state_dict(state_dict)
    model = HookedViT.from_open_clip_model(clip, image_size=48)
    images = torch.randn(2, 3, 48, 48)
    assert model.cfg.image_size == (48, 48)
    with torch.no_grad():
        assert_parity(model(images), resized_clip.encode_image(images))


def test_resize_non_square_keeps_class_position():
    clip = tiny_clip()
    model = HookedViT.from_open_clip_model(clip, image_size=(32, 56))
    assert model.cfg.grid_size == (4, 7)
    torch.testing.assert_close(model.embed.W_pos[0], clip.visual.positional_embedding[0])
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 56)).shape == (1, 24)


def test_resize_rejects_bad_size():
    with pytest.raises(ValueError, match="multiples of the patch size"):
        HookedViT.from_open_clip_model(tiny_clip(), image_size=30)


def test_parity_float64():
    clip = tiny_clip().double()
    model = HookedViT.from_open_clip_model(clip)
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert relative_error(model(images), clip.encode_image(images)) < 1e-12


def test_bfloat16_close_to_float32():
    clip = tiny_clip()
    reference = HookedViT.from_open_clip_model(clip)
    model = HookedViT.from_open_clip_model(clip, dtype=torch.bfloat16)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        # bfloat16 keeps 8 bits of mantissa; 3 layers accumulate to a few percent at most.
        assert relative_error(model(images).float(), reference(images)) < 5e-2


def test_source_module_left_unchanged():
    clip = tiny_clip()
    before = {key: value.clone() for key, value in clip.state_dict().items()}
    clip.train()
    HookedViT.from_open_clip_model(clip, dtype=torch.float64)
    assert clip.training
    for key, value in clip.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_train_mode_source_with_patch_dropout():
    clip = tiny_clip(patch_dropout=0.5)
    clip.train()
    model = HookedViT.from_open_clip_model(clip)
    images = torch.randn(2, 3, 32, 32)
    assert not model.training
    with torch.no_grad():
        clip.eval()
        assert_parity(model(images), clip.encode_image(images))


# -- hook points --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_hooked():
    clip = tiny_clip()
    return clip, HookedViT.from_open_clip_model(clip)


def test_hook_names_and_shapes(tiny_hooked):
    _, model = tiny_hooked
    batch, cfg = 2, model.cfg
    pos = cfg.n_ctx
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.randn(batch, 3, 32, 32))
    expected = {
        "embed.hook_patch_embed": (batch, cfg.n_patches, cfg.d_model),
        "embed.hook_pos_embed": (batch, pos, cfg.d_model),
        "ln_pre.hook_scale": (batch, pos, 1),
        "ln_pre.hook_normalized": (batch, pos, cfg.d_model),
        "hook_embed": (batch, pos, cfg.d_model),
        "blocks.1.hook_resid_pre": (batch, pos, cfg.d_model),
        "blocks.1.hook_resid_mid": (batch, pos, cfg.d_model),
        "blocks.1.ln1.hook_scale": (batch, pos, 1),
        "blocks.1.ln2.hook_normalized": (batch, pos, cfg.d_model),
        "blocks.1.attn.hook_q": (batch, pos, cfg.n_heads, cfg.d_head),
        "blocks.1.attn.hook_k": (batch, pos, cfg.n_heads, cfg.d_head),
        "blocks.1.attn.hook_v": (batch, pos, cfg.n_heads, cfg.d_head),
        "blocks.1.attn.hook_z": (batch, pos, cfg.n_heads, cfg.d_head),
        "blocks.1.attn.hook_attn_scores": (batch, cfg.n_heads, pos, pos),
        "blocks.1.attn.hook_pattern": (batch, cfg.n_heads, pos, pos),
        "blocks.1.attn.hook_result": (batch, pos, cfg.n_heads, cfg.d_model),
        "blocks.1.hook_attn_out": (batch, pos, cfg.d_model),
        "blocks.1.mlp.hook_pre": (batch, pos, cfg.d_mlp),
        "blocks.1.mlp.hook_post": (batch, pos, cfg.d_mlp),
        "blocks.1.hook_mlp_out": (batch, pos, cfg.d_model),
        "blocks.1.hook_resid_post": (batch, pos, cfg.d_model),
        "ln_final.hook_scale": (batch, pos, 1),
        "ln_final.hook_normalized": (batch, pos, cfg.d_model),
        "hook_pooled": (batch, cfg.d_model),
        "hook_image_embed": (batch, cfg.d_embed),
    }
    for name, shape in expected.items():
        assert tuple(cache[name].shape) == shape, name


def test_every_hook_fires_once(tiny_hooked):
    _, model = tiny_hooked
    counts = collections.Counter()

    def count(activation, hook):
        counts[hook.name] += 1

    with torch.no_grad():
        model.run_with_hooks(torch.randn(2, 3, 32, 32), fwd_hooks=[(lambda name: True, count)])
    assert set(counts) == set(model.hook_dict)
    assert set(counts.values()) == {1}


def test_pattern_is_softmax_of_qk(tiny_hooked):
    _, model = tiny_hooked
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.randn(2, 3, 32, 32))
    for layer in range(model.cfg.n_layers):
        q, k = cache[f"blocks.{layer}.attn.hook_q"], cache[f"blocks.{layer}.attn.hook_k"]
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / model.cfg.d_head**0.5
        torch.testing.assert_close(cache[f"blocks.{layer}.attn.hook_pattern"], scores.softmax(dim=-1))


def test_head_results_sum_to_attn_out(tiny_hooked):
    _, model = tiny_hooked
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.randn(2, 3, 32, 32))
    for layer in range(model.cfg.n_layers):
        summed = cache[f"blocks.{layer}.attn.hook_result"].sum(dim=2) + model.blocks[layer].attn.b_O
        torch.testing.assert_close(summed, cache[f"blocks.{layer}.hook_attn_out"], rtol=1e-5, atol=1e-5)


def test_zero_ablating_head_changes_output(tiny_hooked):
    _, model = tiny_hooked
    images = torch.randn(2, 3, 32, 32)

    def ablate_head(result, hook):
        result[:, :, 1] = 0.0
        return result

    def ablate_head_z(z, hook):
        z[:, :, 1] = 0.0
        return z

    with torch.no_grad():
        clean = model(images)
        through_result = model.run_with_hooks(images, fwd_hooks=[("blocks.2.attn.hook_result", ablate_head)])
        through_z = model.run_with_hooks(images, fwd_hooks=[("blocks.2.attn.hook_z", ablate_head_z)])
    assert (through_result - clean).abs().max() > 1e-3
    torch.testing.assert_close(through_result, through_z, rtol=1e-5, atol=1e-6)


def test_returned_value_replaces_activation(tiny_hooked):
    _, model = tiny_hooked
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        _, cache = model.run_with_cache(images, names_filter=["ln_final.hook_normalized"])
        doubled = model.run_with_hooks(images, fwd_hooks=[("ln_final.hook_scale", lambda scale, hook: scale * 2)])
        uniform = model.run_with_hooks(
            images, fwd_hooks=[("blocks.0.attn.hook_pattern", lambda pattern, hook: torch.full_like(pattern, 1 / pattern.shape[-1]))]
        )
        clean = model(images)
    normalized = cache["ln_final.hook_normalized"][:, 0]
    expected = (normalized / 2 * model.ln_final.w + model.ln_final.b) @ model.W_proj
    torch.testing.assert_close(doubled, expected, rtol=1e-5, atol=1e-6)
    assert (uniform - clean).abs().max() > 1e-4


def test_activation_cache_methods(tiny_hooked):
    _, model = tiny_hooked
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.randn(2, 3, 32, 32))
    assert isinstance(cache, ActivationCache)
    final = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"]
    torch.testing.assert_close(cache.decompose_resid().sum(dim=0), final, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache.accumulated_resid()[-1], final)

    heads, labels = cache.stack_head_results(return_labels=True)
    assert heads.shape[0] == model.cfg.n_layers * model.cfg.n_heads
    assert labels[0] == "L0H0"
    attn_out = sum(cache[f"blocks.{l}.hook_attn_out"] for l in range(model.cfg.n_layers))
    biases = sum(block.attn.b_O for block in model.blocks)
    torch.testing.assert_close(heads.sum(dim=0) + biases, attn_out, rtol=1e-5, atol=1e-5)

    scaled = cache.apply_ln_to_stack(cache.decompose_resid(), layer=None)
    torch.testing.assert_close(scaled.sum(dim=0), cache["ln_final.hook_normalized"], rtol=1e-4, atol=1e-5)


def test_run_with_cache_options(tiny_hooked):
    _, model = tiny_hooked
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        _, by_string = model.run_with_cache(images, names_filter="hook_embed")
        _, by_list = model.run_with_cache(images, names_filter=["hook_embed", "hook_pooled"])
        _, by_function = model.run_with_cache(images, names_filter=lambda name: name.endswith("hook_z"))
        _, no_batch = model.run_with_cache(images, names_filter="hook_embed", remove_batch_dim=True, device="cpu")
    assert list(by_string.keys()) == ["hook_embed"]
    assert sorted(by_list.keys()) == ["hook_embed", "hook_pooled"]
    assert len(by_function.keys()) == model.cfg.n_layers
    assert tuple(no_batch["hook_embed"].shape) == (model.cfg.n_ctx, model.cfg.d_model)


def test_unknown_hook_name_rejected(tiny_hooked):
    _, model = tiny_hooked
    images = torch.randn(1, 3, 32, 32)
    with pytest.raises(KeyError, match="blocks.0.attn.hook_pattern"):
        model.run_with_cache(images, names_filter=["blocks.0.attn.hook_patern"])
    with pytest.raises(KeyError, match="hook_resid_post"):
        model.run_with_hooks(images, fwd_hooks=[("blocks.0.hook_resid_pst", lambda x, hook: x)])


# -- conversion ---------------------------------------------------------------------------------


def test_conversion_rejects_unmapped_key():
    clip = tiny_clip()
    cfg = HookedViTConfig.from_open_clip(clip.visual)
    state_dict = dict(clip.visual.state_dict())
    state_dict["transformer.resblocks.0.attn.extra_scale"] = torch.ones(1)
    with pytest.raises(WeightConversionError, match="extra_scale"):
        convert_open_clip_vision_weights(state_dict, cfg)


def test_conversion_rejects_missing_key():
    clip = tiny_clip()
    cfg = HookedViTConfig.from_open_clip(clip.visual)
    state_dict = dict(clip.visual.state_dict())
    del state_dict["transformer.resblocks.1.mlp.c_fc.bias"]
    with pytest.raises(WeightConversionError, match="resblocks.1.mlp.c_fc.bias"):
        convert_open_clip_vision_weights(state_dict, cfg)


def test_conversion_rejects_whole_clip_state_dict():
    clip = tiny_clip()
    cfg = HookedViTConfig.from_open_clip(clip.visual)
    with pytest.raises(WeightConversionError, match="visual.state_dict"):
        convert_open_clip_vision_weights(clip.state_dict(), cfg)


@pytest.mark.parametrize(
    ("overrides", "feature"),
    [
        ({"attentional_pool": True}, "attentional pooler"),
        ({"qk_norm": True}, "CustomResidualAttentionBlock"),
    ],
)
def test_unsupported_variants_raise(overrides, feature):
    clip = tiny_clip(**overrides)
    with pytest.raises(NotImplementedError, match=feature):
        HookedViT.from_open_clip_model(clip)


def test_resnet_tower_raises():
    clip = open_clip.CLIP(
        embed_dim=32, vision_cfg=dict(layers=(1, 1, 1, 1), width=16, image_size=64), text_cfg=dict(layers=1, width=32, heads=2)
    )
    with pytest.raises(NotImplementedError, match="ModifiedResNet"):
        HookedViT.from_open_clip_model(clip)


# -- loading ------------------------------------------------------------------------------------


def test_unknown_model_name_lists_close_names():
    with pytest.raises(ValueError, match="ViT-B-16"):
        HookedViT.from_open_clip("ViT-B-61")


def test_missing_checkpoint_raises(tmp_path):
    missing = tmp_path / "weights.pt"
    with pytest.raises(FileNotFoundError, match="weights.pt"):
        HookedViT.from_open_clip("ViT-B-32", pretrained=str(missing))


def test_unknown_tag_lists_known_tags():
    with pytest.raises(ValueError, match="laion2b_s34b_b79k"):
        HookedViT.from_open_clip("ViT-B-32", pretrained="laion2b_made_up")


def test_random_weights_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="hooked_clip"):
        model = HookedViT.from_open_clip("ViT-S-32-alt", pretrained=None)
    assert "random weights" in caplog.text
    assert model.cfg.model_name == "ViT-S-32-alt"


# -- input checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (torch.randn(3, 32, 32), ValueError, "unsqueeze"),
        (torch.randn(2, 1, 32, 32), ValueError, "1 channel"),
        (torch.randn(2, 4, 32, 32), ValueError, "4 channel"),
        (torch.randn(2, 3, 64, 64), ValueError, "expects 32x32"),
        (torch.randn(0, 3, 32, 32), ValueError, "empty batch"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), TypeError, "uint8"),
        (torch.randn(2, 3, 32, 32).numpy(), TypeError, "torch.Tensor"),
    ],
    ids=["3-d", "grey", "rgba", "wrong-size", "empty", "uint8", "numpy"],
)
def test_bad_images_rejected(tiny_hooked, images, error, message):
    _, model = tiny_hooked
    with pytest.raises(error, match=message):
        model(images)


def test_nan_pixels_rejected(tiny_hooked):
    _, model = tiny_hooked
    images = torch.randn(3, 3, 32, 32)
    images[1, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values \(in batch positions \[1\]\)"):
        model(images)


def test_weight_edits_take_effect():
    clip = tiny_clip()
    model = HookedViT.from_open_clip_model(clip)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(images)
        model.blocks[1].attn.W_K[2].mul_(3.0)
        clip.visual.transformer.resblocks[1].attn.in_proj_weight[64 + 32 : 64 + 48].mul_(3.0)
        after = model(images)
        assert (after - before).abs().max() > 1e-4
        assert_parity(after, clip.encode_image(images))

        model.blocks[0].attn.W_V = torch.nn.Parameter(torch.zeros_like(model.blocks[0].attn.W_V))
        zeroed = model(images)
    assert (zeroed - after).abs().max() > 1e-4


def test_gradients_reach_query_weights():
    model = HookedViT.from_open_clip_model(tiny_clip())
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    for name in ("W_Q", "W_K", "W_V", "b_Q"):
        gradient = getattr(model.blocks[0].attn, name).grad
        assert gradient is not None and gradient.abs().sum() > 0, name


def test_corrupt_checkpoint_rejected(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x80\x04 definitely not a checkpoint" * 10)
    with pytest.raises(ValueError, match="garbage.pt"):
        HookedViT.from_open_clip("ViT-S-32-alt", pretrained=str(path))


def test_model_name_case_suggested_first():
    with pytest.raises(ValueError, match=r"Close names: \['ViT-B-16'"):
        HookedViT.from_open_clip("vit-b-16")


def test_weights_fingerprint_tells_weights_apart():
    first = HookedViT.from_open_clip_model(tiny_clip(seed=0))
    again = HookedViT.from_open_clip_model(tiny_clip(seed=0))
    other = HookedViT.from_open_clip_model(tiny_clip(seed=1))
    assert first.weights_fingerprint() == again.weights_fingerprint()
    assert first.weights_fingerprint() != other.weights_fingerprint()


def test_timm_tower_raises():
    vision_cfg = dict(timm_model_name="vit_tiny_patch16_224", timm_model_pretrained=False, image_size=224,
                      timm_pool="token", timm_proj="linear")
    clip = open_clip.CLIP(embed_dim=32, vision_cfg=vision_cfg, text_cfg=dict(layers=1, width=32, heads=2))
    with pytest.raises(NotImplementedError, match="TimmModel"):
        HookedViT.from_open_clip_model(clip)
