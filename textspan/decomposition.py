"""Exact decomposition of a CLIP image embedding into direct effects of layers, heads and tokens.

The method follows Gandelsman, Efros and Steinhardt, "Interpreting CLIP's Image Representation
via Text-Based Decomposition" (ICLR 2024). Once the LayerNorm statistics of each image are fixed,
the embedding `P LN(resid_final[cls])` is linear in the final residual stream. That residual
stream is the sum of the class-token embedding, every head's output, every attention output bias
and every MLP output.
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

    The pooled vector is `sum_q w_q LN(resid_q)` over token positions `q` (the class token for
    'tok' pooling, the patches with weight `1/n_patches` for 'avg'), or `LN(sum_q w_q resid_q)`
    for towers with `final_ln_after_pool`. With each image's LayerNorm statistics fixed, every
    term of the residual stream maps linearly into the embedding.

    With `mean_and_bias="per_term"` each term is centred on its own before the LayerNorm scale is
    applied, the way TransformerLens's `apply_ln_to_stack` does, and the `ln_post` bias and the
    attention output biases are terms of their own. A head's term is then exactly the change in
    the embedding when that head's output is removed from the final residual stream with the
    `ln_post` scale held fixed. With `"shared"`, the split of Gandelsman et al. (2024), appendix
    A.1: the terms are not centred, and `P (beta - mean * gamma / std)` is split equally among the
    head terms, as is each layer's attention output bias among that layer's heads.

    Either way `total()` equals the embedding that the model returns.
    """

    embed: Float[Tensor, "batch d_embed"]
    """The initial residual stream (after `ln_pre`) at the pooled positions."""
    heads: Float[Tensor, "batch layer head d_embed"]
    attn_bias: Float[Tensor, "batch layer d_embed"]
    mlps: Float[Tensor, "batch layer d_embed"]
    ln_bias: Float[Tensor, "batch d_embed"]
    """The `ln_post` bias through the projection (zero with `mean_and_bias="shared"`)."""
    pool_scale: Float[Tensor, "batch rows"]
    """Pooling weight divided by the `ln_post` standard deviation, for each pooled position."""
    mean_and_bias: MeanAndBias = "per_term"
    token_layers: tuple[int, ...] = ()
    """Layers whose per-token contributions `tokens()` and `token_scores()` can compute."""
    _values: Tensor | None = field(default=None, repr=False)
    _token_attention: Tensor | None = field(default=None, repr=False)
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
        """Return each source token's direct effect through the chosen heads, `[batch, pos, d_embed]`.

        Position 0 is the class token and positions `1..n_patches` are the patches row by row.
        Summed over positions, the result equals `heads[:, layers][:, :, heads].sum((1, 2))`.
        `layers` defaults to every layer in `token_layers`, `heads` to every head.

        Raises:
            ValueError: a layer that `decompose` was not asked to keep tokens for, or a head
                index out of range.
        """
        slots, head_index = self._token_selection(layers, heads)
        per_token = None
        for slot in slots:  # one layer at a time bounds the temporary memory
            values = self._values[:, slot][:, :, head_index]
            attention = self._token_attention[:, slot][:, head_index]
            weighted_values = einops.rearrange(attention, "b h p -> b p h 1") * values
            layer_terms = torch.einsum("bphe,hed->bpd", weighted_values, self._W_O[slot][head_index])
            per_token = layer_terms if per_token is None else per_token.add_(layer_terms)
        per_token = self._project(per_token)

        if self.mean_and_bias == "shared":
            n_pos = per_token.shape[1]
            shared_per_head = self._shared[:, [self.token_layers[slot] for slot in slots]][:, :, head_index].sum(dim=(1, 2))
            per_token = per_token + shared_per_head[:, None, :] / n_pos
        return per_token

    def token_scores(
        self,
        text_embeddings: Float[Tensor, "n_texts d_embed"],
        layers: Sequence[int] | None = None,
        heads: Sequence[int] | None = None,
    ) -> Float[Tensor, "batch layer head pos n_texts"]:
        """Return `<c_(token, layer, head), t>` for every text direction `t`, without forming `c`.

        The text directions are taken back through the projection, the `ln_post` weight and each
        head's `W_O` first, so memory is `O(batch * layers * heads * pos * n_texts)`. Summing the
        result over heads and positions gives `heads @ text_embeddings.T`.

        Raises:
            ValueError: as `tokens`, or text embeddings of the wrong width.
        """
        validate_text_embeddings(text_embeddings, self.heads.shape[-1])
        slots, head_index = self._token_selection(layers, heads)
        texts = text_embeddings.to(self._readout)
        directions = self._readout @ texts.T
        if self.mean_and_bias == "per_term":
            directions = directions - directions.mean(dim=0, keepdim=True)

        batch, n_pos = self._values.shape[0], self._values.shape[2]
        scores = directions.new_empty(batch, len(slots), len(head_index), n_pos, texts.shape[0])
        for index, slot in enumerate(slots):  # one layer at a time bounds the temporary memory
            head_directions = torch.einsum("hed,dt->het", self._W_O[slot][head_index], directions)
            values = self._values[:, slot][:, :, head_index]
            layer_scores = torch.einsum("bphe,het->bhpt", values, head_directions)
            attention = self._token_attention[:, slot][:, head_index]
            scores[:, index] = layer_scores.mul_(attention[..., None])

        if self.mean_and_bias == "shared":
            n_pos = scores.shape[3]
            shared = self._shared[:, [self.token_layers[slot] for slot in slots]][:, :, head_index] @ texts.T
            scores = scores + shared[:, :, :, None, :] / n_pos
        return scores

    def _token_selection(
        self, layers: Sequence[int] | None, heads: Sequence[int] | None
    ) -> tuple[list[int], list[int]]:
        if layers is None:
            layers = list(self.token_layers)
        else:
            layers = [int(layer) + self.n_layers if int(layer) < 0 else int(layer) for layer in layers]
        missing = [layer for layer in layers if layer not in self.token_layers]
        if missing or not layers:
            raise ValueError(
                f"Per-token terms of layers {missing or layers} are not available; this decomposition keeps "
                f"token_layers={list(self.token_layers)}. Call decompose(..., token_layers=...) with them."
            )
        return [self.token_layers.index(layer) for layer in layers], _check_indices(heads, self.n_heads, "head")

    def _project(self, terms: Float[Tensor, "batch *rest d_model"]) -> Float[Tensor, "batch *rest d_embed"]:
        """Map residual-stream terms, already weighted by `pool_scale`, into the joint space."""
        if self.mean_and_bias == "per_term":
            terms = terms - terms.mean(dim=-1, keepdim=True)
        return terms @ self._readout


def validate_text_embeddings(text_embeddings: object, width: int) -> None:
    """Raise ValueError unless `text_embeddings` is a finite `[n_texts, width]` float tensor."""
    if not isinstance(text_embeddings, Tensor) or text_embeddings.ndim != 2:
        shape = tuple(text_embeddings.shape) if isinstance(text_embeddings, Tensor) else type(text_embeddings).__name__
        raise ValueError(f"text_embeddings has shape {shape}; expected [n_texts, {width}].")
    if text_embeddings.shape[0] == 0:
        raise ValueError("text_embeddings is empty; pass at least one text embedding.")
    if text_embeddings.shape[1] != width:
        raise ValueError(
            f"text_embeddings have width {text_embeddings.shape[1]}; this model's embeddings have width {width}."
        )
    if not torch.is_floating_point(text_embeddings) or not bool(torch.isfinite(text_embeddings).all()):
        raise ValueError("text_embeddings must be floating point without NaN or infinite values.")


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
    contributions `Decomposition.tokens()` and `token_scores()` will compute; each costs one
    `[batch, pos, d_model]` value tensor. One forward pass runs, with hooks that keep only the
    rows of the pooled positions (the class token for 'tok' pooling).

    Raises:
        ValueError: unknown `mean_and_bias`, or layers out of range; and the input errors of
            `HookedViT.forward`.
    """
    cfg = model.cfg
    if mean_and_bias not in ("per_term", "shared"):
        raise ValueError(f"mean_and_bias={mean_and_bias!r} is invalid; expected 'per_term' or 'shared'.")
    token_layers = tuple(normalise_layers(token_layers or (), cfg.n_layers))
    pooled_rows = slice(0, 1) if cfg.pool_type == "tok" else slice(None)

    stored: dict[str, Tensor] = {}

    def keep_pooled_rows(activation: Tensor, hook) -> None:
        # A copy, because a view would keep the whole activation alive until decompose returns.
        stored[hook.name] = activation[:, pooled_rows].clone()

    def keep_all(activation: Tensor, hook) -> None:
        stored[hook.name] = activation

    def keep_copy(activation: Tensor, hook) -> None:
        # The values are a view into the fused q, k, v output; a copy lets the rest be freed.
        stored[hook.name] = activation.clone()

    last = cfg.n_layers - 1
    hooks = [("hook_embed", keep_pooled_rows), (f"blocks.{last}.hook_resid_post", keep_pooled_rows)]
    hooks.append(("ln_final.hook_scale", keep_all if cfg.final_ln_after_pool else keep_pooled_rows))
    for layer in range(cfg.n_layers):
        hooks.append((f"blocks.{layer}.attn.hook_z", keep_pooled_rows))
        hooks.append((f"blocks.{layer}.hook_mlp_out", keep_pooled_rows))
    def keep_pattern_rows(keys: Tensor, hook) -> None:
        # The attention of the pooled rows, computed here so the keys need not be kept.
        queries = stored.pop(hook.name.replace("hook_k", "hook_q"))
        dtype = torch.float32 if keys.dtype in (torch.float16, torch.bfloat16) else keys.dtype
        scores = torch.einsum("bqhe,bkhe->bhqk", queries.to(dtype), keys.to(dtype)) / cfg.d_head**0.5
        stored[hook.name.replace("hook_k", "pattern_rows")] = scores.softmax(dim=-1)

    for layer in token_layers:
        hooks.append((f"blocks.{layer}.attn.hook_q", keep_pooled_rows))
        hooks.append((f"blocks.{layer}.attn.hook_k", keep_pattern_rows))
        hooks.append((f"blocks.{layer}.attn.hook_v", keep_copy))
    embedding = model.run_with_hooks(images, fwd_hooks=hooks)

    return _assemble(model, stored, token_layers, mean_and_bias, pooled_rows, embedding.dtype)


def normalise_layers(layers: Sequence[int], n_layers: int) -> list[int]:
    """Return sorted, unique, non-negative layer indices; negative ones count from the end.

    Raises:
        ValueError: a layer outside `-n_layers..n_layers - 1`.
    """
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
    pooled_rows: slice,
    dtype: torch.dtype,
) -> Decomposition:
    cfg = model.cfg
    compute_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    layers = range(cfg.n_layers)

    def cast(tensor: Tensor) -> Tensor:
        return tensor.to(compute_dtype)

    embed = cast(stored["hook_embed"])
    batch = embed.shape[0]
    weights = cast(model.pool_weights(batch))[:, pooled_rows]
    if cfg.final_ln_after_pool:
        pool_scale = weights / cast(stored["ln_final.hook_scale"]).reshape(batch, 1)
    else:
        pool_scale = weights / cast(stored["ln_final.hook_scale"])[..., 0]

    def pool(terms: Tensor) -> Tensor:
        """Sum `[batch, rows, *rest]` over the pooled rows with weight / std."""
        shape = pool_scale.shape + (1,) * (terms.ndim - 2)
        return (terms * pool_scale.view(shape)).sum(dim=1)

    readout = cast(model.ln_final.w)[:, None] * cast(model.W_proj)
    b_O = torch.stack([cast(model.blocks[layer].attn.b_O) for layer in layers])

    z = torch.stack([pool(cast(stored[f"blocks.{layer}.attn.hook_z"])) for layer in layers], dim=1)
    mlp_out = torch.stack([pool(cast(stored[f"blocks.{layer}.hook_mlp_out"])) for layer in layers], dim=1)
    total_scale = pool_scale.sum(dim=1)

    decomposition = Decomposition(
        embed=embed,
        heads=z,
        attn_bias=b_O,
        mlps=mlp_out,
        ln_bias=einops.repeat(cast(model.ln_final.b) @ cast(model.W_proj), "e -> batch e", batch=batch),
        pool_scale=pool_scale,
        mean_and_bias=mean_and_bias,
        token_layers=token_layers,
        _readout=readout,
    )
    project = decomposition._project
    decomposition.embed = project(pool(embed))
    # One layer at a time, so that no stacked copy of every layer's W_O is made.
    head_results = [
        torch.einsum("bhe,hed->bhd", z[:, layer], cast(model.blocks[layer].attn.W_O)) for layer in layers
    ]
    decomposition.heads = project(torch.stack(head_results, dim=1))
    decomposition.mlps = project(mlp_out)
    decomposition.attn_bias = project(b_O[None] * total_scale[:, None, None])

    if mean_and_bias == "shared":
        # The mean of a weighted sum of positions is the weighted sum of their means, so one
        # formula covers LayerNorm before and after pooling.
        resid = cast(stored[f"blocks.{cfg.n_layers - 1}.hook_resid_post"])
        pooled_mean = (resid.mean(dim=-1) * pool_scale).sum(dim=1)
        _share_mean_and_bias(decomposition, pooled_mean, readout)

    if token_layers:
        W_O = torch.stack([cast(model.blocks[layer].attn.W_O) for layer in token_layers])
        _keep_token_inputs(decomposition, stored, token_layers, W_O, pool_scale, cast)
    return decomposition


def _share_mean_and_bias(decomposition: Decomposition, pooled_mean: Tensor, readout: Tensor) -> None:
    """Move the `ln_post` mean and bias and the attention output biases onto the head terms.

    `pooled_mean` is the residual-stream mean of each pooled position times its weight / std,
    summed over positions, `[batch]`.
    """
    bias_minus_mean = decomposition.ln_bias - pooled_mean[:, None] * readout.sum(dim=0)
    n_layers, n_heads = decomposition.n_layers, decomposition.n_heads
    shared = bias_minus_mean[:, None, None, :] / (n_layers * n_heads)
    shared = shared + decomposition.attn_bias[:, :, None, :] / n_heads
    decomposition.heads = decomposition.heads + shared
    decomposition._shared = shared.expand_as(decomposition.heads)
    decomposition.attn_bias = torch.zeros_like(decomposition.attn_bias)
    decomposition.ln_bias = torch.zeros_like(decomposition.ln_bias)


def _keep_token_inputs(decomposition, stored, token_layers, W_O, pool_scale, cast) -> None:
    """Store the values, and the attention of the pooled rows to each token weighted by `pool_scale`."""
    pattern = torch.stack([cast(stored[f"blocks.{layer}.attn.pattern_rows"]) for layer in token_layers], dim=1)
    values = torch.stack([cast(stored.pop(f"blocks.{layer}.attn.hook_v")) for layer in token_layers], dim=1)

    decomposition._token_attention = torch.einsum("blhqk,bq->blhk", pattern, pool_scale)
    decomposition._values = values
    decomposition._W_O = W_O


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
