"""Exact decomposition of a CLIP image embedding into direct effects of layers, heads and tokens.

Following Gandelsman, Efros and Steinhardt, "Interpreting CLIP's Image Representation via
Text-Based Decomposition" (ICLR 2024), the embedding `P LN(resid_final[cls])` is linear in the
final residual stream once the LayerNorm statistics of each image are fixed, and that residual
stream is the sum of the class-token embedding, every head's output, every attention output
bias and every MLP output.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from hooked_clip import HookedViT

logger = logging.getLogger(__name__)

MeanAndBias = Literal["per_term", "shared"]


@dataclass
class Decomposition:
    """Direct effects on the image embedding of each part of the model, in the joint space.

    With `mean_and_bias="per_term"` each term is centred on its own before the `ln_post` scale is
    applied, the way TransformerLens's `apply_ln_to_stack` does, and the `ln_post` bias and the
    attention output biases are terms of their own. A head's term is then exactly the change in
    the embedding when that head's output is removed from the final residual stream with the
    `ln_post` scale held fixed. With `"shared"`, the split of Gandelsman et al. (2024), appendix
    A.1: the terms are not centred, and `P (beta - mean * gamma / std)` is split equally among the
    head terms, as is each layer's attention output bias among that layer's heads.

    Either way `total()` equals the embedding that the model returns.
    """

    embed: Float[Tensor, "batch d_embed"]
    """The class token's initial residual stream (after `ln_pre`)."""
    heads: Float[Tensor, "batch layer head d_embed"]
    attn_bias: Float[Tensor, "batch layer d_embed"]
    mlps: Float[Tensor, "batch layer d_embed"]
    ln_bias: Float[Tensor, "batch d_embed"]
    """The `ln_post` bias through the projection (zero with `mean_and_bias="shared"`)."""
    scale: Float[Tensor, "batch"]
    """The `ln_post` standard deviation `sqrt(var + eps)` of each image's class token."""
    mean_and_bias: MeanAndBias = "per_term"
    token_layers: tuple[int, ...] = ()
    """Layers whose per-token contributions `tokens()` can compute."""
    _values: Tensor | None = field(default=None, repr=False)
    _cls_pattern: Tensor | None = field(default=None, repr=False)
    _W_O: Tensor | None = field(default=None, repr=False)
    _readout: Tensor | None = field(default=None, repr=False)
    _shared: Tensor | None = field(default=None, repr=False)

    @property
    def n_layers(self) -> int:
        return self.heads.shape[1]

    @property
    def n_heads(self) -> int:
        return self.heads.shape[2]

    def attention_layers(self) -> Float[Tensor, "batch layer d_embed"]:
        """Return each attention layer's direct effect: its heads plus its output bias."""
        return self.heads.sum(dim=2) + self.attn_bias

    def total(self) -> Float[Tensor, "batch d_embed"]:
        """Return the sum of every term, which equals the model's image embedding."""
        return (
            self.embed
            + self.heads.sum(dim=(1, 2))
            + self.attn_bias.sum(dim=1)
            + self.mlps.sum(dim=1)
            + self.ln_bias
        )

    def tokens(
        self, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None
    ) -> Float[Tensor, "batch pos d_embed"]:
        """Return each token position's direct effect through the chosen heads, `[batch, pos, d_embed]`.

        Position 0 is the class token and positions `1..n_patches` are the patches row by row.
        Summed over positions, the result equals `heads[:, layers][:, :, heads].sum((1, 2))`.
        `layers` defaults to every layer in `token_layers`; `heads` to every head.

        Raises:
            ValueError: a layer that `decompose` was not asked to keep tokens for, or a head
                index out of range.
        """
        layers = list(self.token_layers if layers is None else layers)
        missing = [layer for layer in layers if layer not in self.token_layers]
        if missing or not layers:
            raise ValueError(
                f"Per-token terms of layers {missing or layers} are not available; this decomposition keeps "
                f"token_layers={list(self.token_layers)}. Call decompose(..., token_layers=...) with them."
            )
        head_index = _check_indices(heads, self.n_heads, "head")
        slots = [self.token_layers.index(layer) for layer in layers]

        values = self._values[:, slots][:, :, :, head_index]
        pattern = self._cls_pattern[:, slots][:, :, head_index]
        W_O = self._W_O[slots][:, head_index]
        weighted_values = einops.rearrange(pattern, "b l h p -> b l p h 1") * values
        per_token = torch.einsum("blphe,lhed->bpd", weighted_values, W_O)
        per_token = self._project(per_token)

        if self.mean_and_bias == "shared":
            n_pos = per_token.shape[1]
            shared_per_head = self._shared[:, slots][:, :, head_index].sum(dim=(1, 2))
            per_token = per_token + shared_per_head[:, None, :] / n_pos
        return per_token

    def _project(self, terms: Float[Tensor, "batch *rest d_model"]) -> Float[Tensor, "batch *rest d_embed"]:
        if self.mean_and_bias == "per_term":
            terms = terms - terms.mean(dim=-1, keepdim=True)
        projected = terms @ self._readout
        shape = (-1,) + (1,) * (projected.ndim - 2) + (1,)
        return projected / self.scale.view(shape)


def _check_indices(indices: Sequence[int] | None, size: int, what: str) -> list[int]:
    if indices is None:
        return list(range(size))
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < size]
    if bad or not indices:
        raise ValueError(f"{what} indices {bad or indices} are invalid; expected a non-empty list within 0..{size - 1}.")
    return indices


@torch.no_grad()
def decompose(
    model: HookedViT,
    images: Float[Tensor, "batch 3 height width"],
    token_layers: Sequence[int] | None = None,
    mean_and_bias: MeanAndBias = "per_term",
) -> Decomposition:
    """Decompose the image embeddings of `images` into direct effects (see `Decomposition`).

    `token_layers` lists the layers (negative indices count from the end) whose per-token
    contributions `Decomposition.tokens()` will compute; they cost one `[batch, pos, d_model]`
    value tensor per layer. Runs one forward pass with hooks that keep only the class-token rows.

    Raises:
        NotImplementedError: a model whose pooling is not the class token.
        ValueError: unknown `mean_and_bias`, or layers out of range; and the input errors of
            `HookedViT.forward`.
    """
    cfg = model.cfg
    if cfg.pool_type != "tok" or cfg.final_ln_after_pool:
        raise NotImplementedError(
            f"decompose supports class-token pooling only; this model has pool_type={cfg.pool_type!r}, "
            f"final_ln_after_pool={cfg.final_ln_after_pool}."
        )
    if mean_and_bias not in ("per_term", "shared"):
        raise ValueError(f"mean_and_bias={mean_and_bias!r} is invalid; expected 'per_term' or 'shared'.")
    token_layers = tuple(_normalise_layers(token_layers or (), cfg.n_layers))

    stored: dict[str, Tensor] = {}

    def keep_class_row(activation: Tensor, hook) -> None:
        stored[hook.name] = activation[:, 0]

    def keep_all(activation: Tensor, hook) -> None:
        stored[hook.name] = activation

    hooks = [("hook_embed", keep_class_row), ("ln_final.hook_scale", keep_class_row)]
    for layer in range(cfg.n_layers):
        hooks.append((f"blocks.{layer}.attn.hook_z", keep_class_row))
        hooks.append((f"blocks.{layer}.hook_mlp_out", keep_class_row))
    for layer in token_layers:
        hooks.append((f"blocks.{layer}.attn.hook_q", keep_class_row))
        hooks.append((f"blocks.{layer}.attn.hook_k", keep_all))
        hooks.append((f"blocks.{layer}.attn.hook_v", keep_all))
    embedding = model.run_with_hooks(images, fwd_hooks=hooks)

    return _assemble(model, stored, token_layers, mean_and_bias, embedding.dtype)


def _normalise_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    result = []
    for layer in layers:
        index = int(layer) + n_layers if int(layer) < 0 else int(layer)
        if not 0 <= index < n_layers:
            raise ValueError(f"Layer {layer} does not exist; the model has layers 0..{n_layers - 1}.")
        if index not in result:
            result.append(index)
    return sorted(result)


def _assemble(
    model: HookedViT,
    stored: dict[str, Tensor],
    token_layers: tuple[int, ...],
    mean_and_bias: MeanAndBias,
    dtype: torch.dtype,
) -> Decomposition:
    cfg = model.cfg
    compute_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    layers = range(cfg.n_layers)

    def cast(tensor: Tensor) -> Tensor:
        return tensor.to(compute_dtype)

    readout = cast(model.ln_final.w)[:, None] * cast(model.W_proj)
    scale = cast(stored["ln_final.hook_scale"]).reshape(-1)
    W_O = torch.stack([cast(model.blocks[layer].attn.W_O) for layer in layers])
    b_O = torch.stack([cast(model.blocks[layer].attn.b_O) for layer in layers])

    z = torch.stack([cast(stored[f"blocks.{layer}.attn.hook_z"]) for layer in layers], dim=1)
    head_results = torch.einsum("blhe,lhed->blhd", z, W_O)
    mlp_out = torch.stack([cast(stored[f"blocks.{layer}.hook_mlp_out"]) for layer in layers], dim=1)
    embed = cast(stored["hook_embed"])
    batch = embed.shape[0]

    decomposition = Decomposition(
        embed=embed,
        heads=head_results,
        attn_bias=einops.repeat(b_O, "layer d -> batch layer d", batch=batch),
        mlps=mlp_out,
        ln_bias=einops.repeat(cast(model.ln_final.b) @ cast(model.W_proj), "e -> batch e", batch=batch),
        scale=scale,
        mean_and_bias=mean_and_bias,
        token_layers=token_layers,
        _readout=readout,
    )
    project = decomposition._project
    decomposition.embed = project(embed)
    decomposition.heads = project(head_results)
    decomposition.mlps = project(mlp_out)
    decomposition.attn_bias = project(decomposition.attn_bias)

    if mean_and_bias == "shared":
        _share_mean_and_bias(decomposition, embed, head_results, mlp_out, b_O, readout)

    if token_layers:
        _keep_token_inputs(decomposition, stored, token_layers, W_O, cfg.d_head, cast)
    return decomposition


def _share_mean_and_bias(
    decomposition: Decomposition,
    embed: Tensor,
    head_results: Tensor,
    mlp_out: Tensor,
    b_O: Tensor,
    readout: Tensor,
) -> None:
    """Move the mean and bias of `ln_post` and the attention output biases onto the head terms."""
    resid = embed + head_results.sum(dim=(1, 2)) + b_O.sum(dim=0) + mlp_out.sum(dim=1)
    mean = resid.mean(dim=-1)
    bias_minus_mean = decomposition.ln_bias - mean[:, None] * readout.sum(dim=0) / decomposition.scale[:, None]

    n_layers, n_heads = head_results.shape[1], head_results.shape[2]
    shared = bias_minus_mean[:, None, None, :] / (n_layers * n_heads)
    shared = shared + decomposition.attn_bias[:, :, None, :] / n_heads
    decomposition.heads = decomposition.heads + shared
    decomposition._shared = shared.expand_as(decomposition.heads)
    decomposition.attn_bias = torch.zeros_like(decomposition.attn_bias)
    decomposition.ln_bias = torch.zeros_like(decomposition.ln_bias)


def _keep_token_inputs(decomposition, stored, token_layers, W_O, d_head, cast) -> None:
    """Store the values and class-token attention rows that `Decomposition.tokens` contracts."""
    queries = torch.stack([cast(stored[f"blocks.{layer}.attn.hook_q"]) for layer in token_layers], dim=1)
    keys = torch.stack([cast(stored[f"blocks.{layer}.attn.hook_k"]) for layer in token_layers], dim=1)
    values = torch.stack([cast(stored[f"blocks.{layer}.attn.hook_v"]) for layer in token_layers], dim=1)
    scores = torch.einsum("blhe,blphe->blhp", queries, keys) / d_head**0.5

    decomposition._cls_pattern = scores.softmax(dim=-1)
    decomposition._values = values
    decomposition._W_O = W_O[list(token_layers)]


def direct_effect_shares(decomposition: Decomposition) -> dict[str, Tensor]:
    """Return each term's share of the embedding: `<term, e> / |e|^2`, averaged over images.

    The shares of all terms sum to 1. Keys: `embed` `[]`, `attention` `[layer]` (heads and
    output bias), `mlp` `[layer]`, `heads` `[layer, head]`, `ln_bias` `[]`.
    """
    embedding = decomposition.total()
    unit = embedding / (embedding * embedding).sum(dim=-1, keepdim=True)

    def share(term: Tensor) -> Tensor:
        shape = (unit.shape[0],) + (1,) * (term.ndim - 2) + (unit.shape[1],)
        return (term * unit.view(shape)).sum(dim=-1).mean(dim=0)

    return {
        "embed": share(decomposition.embed),
        "attention": share(decomposition.attention_layers()),
        "mlp": share(decomposition.mlps),
        "heads": share(decomposition.heads),
        "ln_bias": share(decomposition.ln_bias),
    }
