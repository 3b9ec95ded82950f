"""Configuration of a HookedViT, read from an OpenCLIP vision tower (never from its name)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from open_clip.transformer import (
    LayerScale,
    QuickGELU,
    ResidualAttentionBlock,
    VisionTransformer,
)
from torch import nn

ACTIVATIONS = ("gelu", "gelu_tanh", "quick_gelu")


@dataclass
class HookedViTConfig:
    """Architecture of an OpenCLIP `VisionTransformer`, with TransformerLens field names.

    `n_layers`, `n_heads`, `d_model`, `d_head`, `d_mlp`, `normalization_type` and `attn_only` are
    the names that `transformer_lens.ActivationCache` reads. Image and patch sizes are
    `(height, width)` in pixels; `grid_size` is `(rows, columns)` of patches.
    """

    d_model: int
    n_layers: int
    n_heads: int
    d_head: int
    d_mlp: int
    d_embed: int
    act_fn: str
    eps: float
    image_size: tuple[int, int]
    patch_size: tuple[int, int]
    layer_scale: bool = False
    pool_type: str = "tok"
    final_ln_after_pool: bool = False
    ln_pre: bool = True
    normalization_type: str = "LN"
    attn_only: bool = False
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    model_name: str | None = None
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if self.act_fn not in ACTIVATIONS:
            raise ValueError(f"act_fn={self.act_fn!r} is not supported; expected one of {ACTIVATIONS}.")
        if self.n_heads * self.d_head != self.d_model:
            raise ValueError(
                f"n_heads * d_head = {self.n_heads} * {self.d_head} does not equal d_model = {self.d_model}."
            )
        for name in ("image_size", "patch_size"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 2 or min(value) <= 0:
                raise ValueError(f"{name}={value} must be a (height, width) pair of positive integers.")
            setattr(self, name, value)
        rows, columns = self.grid_size
        if rows * self.patch_size[0] != self.image_size[0] or columns * self.patch_size[1] != self.image_size[1]:
            raise ValueError(
                f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}."
            )

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid `(rows, columns)`."""
        return (self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1])

    @property
    def n_patches(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    @property
    def n_ctx(self) -> int:
        """Number of token positions: the class token then the patches, row by row."""
        return self.n_patches + 1

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-friendly values (the dtype as its name)."""
        fields = dataclasses.asdict(self)
        fields["dtype"] = str(self.dtype).removeprefix("torch.")
        return fields

    @classmethod
    def from_open_clip(cls, visual: nn.Module) -> "HookedViTConfig":
        """Read the configuration of an OpenCLIP vision tower.

        Raises:
            NotImplementedError: for towers and options that HookedViT does not reproduce, naming
                the class or option.
        """
        if not isinstance(visual, VisionTransformer):
            raise NotImplementedError(
                f"HookedViT supports OpenCLIP's VisionTransformer only; got {type(visual).__name__} "
                f"(timm towers and ModifiedResNet have no HookedViT conversion)."
            )
        _reject_unsupported_options(visual)

        blocks = visual.transformer.resblocks
        first = blocks[0]
        attention = first.attn
        d_model = visual.transformer.width
        n_heads = attention.num_heads
        return cls(
            d_model=d_model,
            n_layers=len(blocks),
            n_heads=n_heads,
            d_head=d_model // n_heads,
            d_mlp=first.mlp.c_fc.out_features,
            d_embed=visual.proj.shape[1],
            act_fn=_activation_name(first.mlp.gelu),
            eps=float(first.ln_1.eps),
            image_size=tuple(visual.image_size),
            patch_size=tuple(visual.patch_size),
            layer_scale=isinstance(first.ls_1, LayerScale),
            pool_type=visual.pool_type,
            final_ln_after_pool=bool(visual.final_ln_after_pool),
            ln_pre=not isinstance(visual.ln_pre, nn.Identity),
            dtype=visual.conv1.weight.dtype,
            device=str(visual.conv1.weight.device),
        )


def _activation_name(module: nn.Module) -> str:
    if isinstance(module, QuickGELU):
        return "quick_gelu"
    if isinstance(module, nn.GELU):
        return "gelu_tanh" if module.approximate == "tanh" else "gelu"
    raise NotImplementedError(
        f"MLP activation {type(module).__name__} is not supported; expected nn.GELU or OpenCLIP's QuickGELU."
    )


def _reject_unsupported_options(visual: VisionTransformer) -> None:
    """Raise NotImplementedError naming the first option of `visual` that HookedViT lacks."""
    if getattr(visual, "attn_pool", None) is not None:
        raise NotImplementedError(
            "The attentional pooler (attn_pool, used by CoCa) is not supported by HookedViT: its queries "
            "cross-attend to every token through their own LayerNorm, which HookedViT does not reproduce yet."
        )
    if visual.pool_type not in ("tok", "avg"):
        raise NotImplementedError(
            f"pool_type={visual.pool_type!r} is not supported by HookedViT; 'tok' and 'avg' are."
        )
    if visual.proj is None:
        raise NotImplementedError("A vision tower without its output projection (proj=None) is not supported.")
    if not visual.transformer.batch_first:
        raise NotImplementedError("A sequence-first (batch_first=False) transformer is not supported.")

    for index, block in enumerate(visual.transformer.resblocks):
        if not isinstance(block, ResidualAttentionBlock):
            raise NotImplementedError(
                f"Block {index} is a {type(block).__name__}; only ResidualAttentionBlock is supported "
                "(qk_norm, scaled cosine attention and head or MLP scaling are not)."
            )
        if hasattr(block, "ln_1_kv"):
            raise NotImplementedError(f"Block {index} uses cross-attention, which is not supported.")
        if not isinstance(block.attn, nn.MultiheadAttention) or not block.attn._qkv_same_embed_dim:
            raise NotImplementedError(
                f"Block {index} attention is {type(block.attn).__name__} with separate q, k, v weights; "
                "only nn.MultiheadAttention with a fused in_proj_weight is supported."
            )
        for norm_name in ("ln_1", "ln_2"):
            norm = getattr(block, norm_name)
            if not isinstance(norm, nn.LayerNorm) or not norm.elementwise_affine:
                raise NotImplementedError(
                    f"Block {index} {norm_name} is {type(norm).__name__}; only an affine nn.LayerNorm is supported."
                )
