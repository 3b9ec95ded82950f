"""Strict conversion of an OpenCLIP VisionTransformer state dict to HookedViT parameter names."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import einops
import torch
from torch import Tensor

from hooked_clip.config import HookedViTConfig


class WeightConversionError(KeyError):
    """A source key has no mapping, or a HookedViT parameter has no source."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def convert_open_clip_vision_weights(
    state_dict: Mapping[str, Tensor], cfg: HookedViTConfig
) -> dict[str, Tensor]:
    """Convert an OpenCLIP `VisionTransformer` state dict into HookedViT parameters.

    Every source key must be consumed by exactly one rule. LayerScale vectors (`ls_1.gamma`,
    `ls_2.gamma`) are folded into the attention and MLP output weights and biases.

    Raises:
        WeightConversionError: naming every source key that no rule maps, or every key that a
            rule needs but the state dict lacks.
    """
    remaining = dict(state_dict)
    missing: list[str] = []

    def take(key: str) -> Tensor:
        if key not in remaining:
            missing.append(key)
            return torch.zeros(())
        return remaining.pop(key)

    converted: dict[str, Tensor] = {
        "embed.W_patch": take("conv1.weight"),
        "embed.class_embedding": take("class_embedding"),
        "embed.W_pos": take("positional_embedding"),
        "ln_final.w": take("ln_post.weight"),
        "ln_final.b": take("ln_post.bias"),
        "W_proj": take("proj"),
    }
    if cfg.ln_pre:
        converted["ln_pre.w"] = take("ln_pre.weight")
        converted["ln_pre.b"] = take("ln_pre.bias")

    for layer in range(cfg.n_layers):
        converted.update(_convert_block(take, f"transformer.resblocks.{layer}.", f"blocks.{layer}.", cfg))

    # Patch dropout and similar modules carry no state, so nothing else may remain.
    if missing:
        raise WeightConversionError(
            f"The OpenCLIP state dict lacks {len(missing)} key(s) that HookedViT needs: {missing[:10]}. "
            "Pass the state dict of the VisionTransformer (model.visual.state_dict()), not of the whole CLIP model."
        )
    if remaining:
        raise WeightConversionError(
            f"{len(remaining)} OpenCLIP key(s) have no HookedViT mapping: {sorted(remaining)[:10]}. "
            "The tower has parameters that HookedViT does not reproduce, so its output would differ."
        )
    return converted


def _convert_block(
    take: Callable[[str], Tensor], source: str, target: str, cfg: HookedViTConfig
) -> dict[str, Tensor]:
    in_proj_weight = take(source + "attn.in_proj_weight")
    in_proj_bias = take(source + "attn.in_proj_bias")
    out_proj_weight = take(source + "attn.out_proj.weight")
    out_proj_bias = take(source + "attn.out_proj.bias")
    fc_weight = take(source + "mlp.c_fc.weight")
    fc_bias = take(source + "mlp.c_fc.bias")
    proj_weight = take(source + "mlp.c_proj.weight")
    proj_bias = take(source + "mlp.c_proj.bias")
    attn_scale = take(source + "ls_1.gamma") if cfg.layer_scale else None
    mlp_scale = take(source + "ls_2.gamma") if cfg.layer_scale else None

    converted = {
        target + "ln1.w": take(source + "ln_1.weight"),
        target + "ln1.b": take(source + "ln_1.bias"),
        target + "ln2.w": take(source + "ln_2.weight"),
        target + "ln2.b": take(source + "ln_2.bias"),
    }
    if in_proj_weight.ndim != 2:
        return converted  # missing keys; the caller raises with the full list

    for name, weight, bias in zip(
        ("Q", "K", "V"), in_proj_weight.chunk(3, dim=0), in_proj_bias.chunk(3, dim=0), strict=True
    ):
        converted[f"{target}attn.W_{name}"] = einops.rearrange(
            weight, "(head d_head) d_model -> head d_model d_head", head=cfg.n_heads
        )
        converted[f"{target}attn.b_{name}"] = einops.rearrange(
            bias, "(head d_head) -> head d_head", head=cfg.n_heads
        )

    W_O = einops.rearrange(out_proj_weight, "d_model (head d_head) -> head d_head d_model", head=cfg.n_heads)
    W_in = einops.rearrange(fc_weight, "d_mlp d_model -> d_model d_mlp")
    W_out = einops.rearrange(proj_weight, "d_model d_mlp -> d_mlp d_model")
    if attn_scale is not None and mlp_scale is not None:
        # Fold in float64 so that the product is rounded once, when the model is cast to its dtype.
        attn_scale, mlp_scale = attn_scale.double(), mlp_scale.double()
        W_O, out_proj_bias = W_O.double() * attn_scale, out_proj_bias.double() * attn_scale
        W_out, proj_bias = W_out.double() * mlp_scale, proj_bias.double() * mlp_scale

    converted.update({
        target + "attn.W_O": W_O,
        target + "attn.b_O": out_proj_bias,
        target + "mlp.W_in": W_in,
        target + "mlp.b_in": fc_bias,
        target + "mlp.W_out": W_out,
        target + "mlp.b_out": proj_bias,
    })
    return converted
