"""Attention- and gradient-based heatmaps for zero-shot segmentation, each mapping `(model, images,
text_embedding)` to `[batch, rows, cols]` on the patch grid. These are the baselines of Gandelsman, Efros
and Steinhardt, "Interpreting CLIP's Image Representation via Text-Based Decomposition" (ICLR 2024).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import einops
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from hooked_clip import HookedViT
from hooked_clip.inputs import validate_images

logger = logging.getLogger(__name__)

HeatmapMethod = Callable[[HookedViT, Tensor, Tensor], Tensor]
"""`(model, images [batch, 3, height, width], text_embedding [d_embed] or [batch, d_embed]) -> [batch, rows, cols]`."""


def pattern_hook_name(layer: int) -> str:
    """Return the hook name of a block's attention pattern `[batch, head, query_pos, key_pos]`."""
    return f"blocks.{layer}.attn.hook_pattern"


# -- attention only --------------------------------------------------------------------------


def raw_attention(
    model: HookedViT,
    images: Float[Tensor, "batch 3 height width"],
    text_embedding: Tensor | None = None,
) -> Float[Tensor, "batch rows cols"]:
    """Return the last block's attention from the pooled position to each patch, averaged over heads.

    For class-token pooling this is `blocks.{L-1}.attn.hook_pattern[:, :, 0, 1:]` averaged over
    heads (see `readout_row` for mean pooling). `text_embedding` is ignored: the map is the same
    for every class. Values are in [0, 1].

    Raises:
        TypeError, ValueError: images that `HookedViT` rejects.
    """
    last = model.cfg.n_layers - 1
    (pattern,) = attention_patterns(model, images, [last])
    return readout_row(model, pattern.mean(dim=1))


def attention_rollout(
    model: HookedViT,
    images: Float[Tensor, "batch 3 height width"],
    text_embedding: Tensor | None = None,
    start_layer: int = 0,
) -> Float[Tensor, "batch rows cols"]:
    """Compute attention rollout (Abnar and Zuidema, "Quantifying Attention Flow in Transformers", 2020).

    Each block from `start_layer` on contributes `Â = normalise_rows(mean_heads(pattern) + I)`,
    and the rollout is `Â_(L-1) ... Â_start`. The map is its pooled row over the patches. The
    ImageNet-segmentation script of Chefer et al. (2021) calls its rollout with `start_layer=1`,
    which leaves out the first block. `text_embedding` is ignored. Values are non-negative.

    Raises:
        TypeError, ValueError: images that `HookedViT` rejects; `start_layer` outside `0..n_layers-1`.
    """
    layers = _layers_from(model, start_layer)
    patterns = attention_patterns(model, images, layers)

    identity = torch.eye(model.cfg.n_ctx, dtype=patterns[0].dtype, device=patterns[0].device)
    rollout = identity.expand(patterns[0].shape[0], -1, -1)
    for pattern in patterns:
        attention = pattern.mean(dim=1) + identity
        attention = attention / attention.sum(dim=-1, keepdim=True)
        rollout = attention @ rollout
    return readout_row(model, rollout)


def attention_patterns(
    model: HookedViT, images: Float[Tensor, "batch 3 height width"], layers: Sequence[int]
) -> list[Float[Tensor, "batch head query_pos key_pos"]]:
    """Run the model without gradients and return the attention pattern of each block in `layers`.

    Raises:
        TypeError, ValueError: images that `HookedViT` rejects.
        KeyError: a layer that the model does not have.
    """
    names = [pattern_hook_name(layer) for layer in layers]
    with torch.no_grad():
        _, cache = model.run_with_cache(images, names_filter=names)
    return [cache[name] for name in names]


# -- gradient-weighted -----------------------------------------------------------------------


def attention_gradients(
    model: HookedViT,
    images: Float[Tensor, "batch 3 height width"],
    text_embedding: Float[Tensor, "*batch d_embed"],
    layers: Sequence[int] | None = None,
    normalize: bool = False,
) -> tuple[list[Tensor], list[Tensor]]:
    """Return the attention patterns of `layers` and the gradients of the similarity with respect to them.

    The similarity of image `b` is `<encode_image(x_b), t_b>`, or the cosine `<e_b / |e_b|, t_b>`
    with `normalize`, where `t` is `text_embedding` `[d_embed]` (one direction for every image)
    or `[batch, d_embed]`. Images are independent, so the gradient of the summed similarity
    gives each image's own gradient. Both lists hold one `[batch, head, query_pos, key_pos]`
    tensor per layer, detached. Parameter `.grad` attributes are left as they are, because the
    gradients come from `torch.autograd.grad`.

    Raises:
        TypeError, ValueError: images that `HookedViT` rejects; a text embedding of the wrong shape.
        KeyError: a layer that the model does not have.
    """
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    directions = text_directions(model, images, text_embedding)
    names = [pattern_hook_name(layer) for layer in layers]
    patterns: dict[str, Tensor] = {}

    def keep_pattern(pattern: Tensor, hook) -> None:
        patterns[hook.name] = pattern

    with torch.enable_grad():
        # Requiring the input's gradient builds the graph even when the parameters are frozen.
        images = images.detach().requires_grad_(True)
        embeddings = model.run_with_hooks(images, fwd_hooks=[(name, keep_pattern) for name in names])
        similarity = _similarity(embeddings, directions.to(embeddings), normalize)
        gradients = torch.autograd.grad(similarity.sum(), [patterns[name] for name in names])
    return [patterns[name].detach() for name in names], [gradient.detach() for gradient in gradients]


def chefer_relevance(
    model: HookedViT,
    images: Float[Tensor, "batch 3 height width"],
    text_embedding: Float[Tensor, "*batch d_embed"],
    normalize: bool = False,
    start_layer: int = 0,
) -> Float[Tensor, "batch rows cols"]:
    """Propagate gradient-weighted attention through the blocks, after Chefer, Gur and Wolf (2021).

    Starting from `R = I`, each block from `start_layer` on updates
    `R <- R + mean_heads(relu(grad ⊙ pattern)) @ R`. Here `grad` is the gradient of the
    similarity with the text direction (see `attention_gradients`) with respect to that block's
    pattern. The map is the pooled row of `R` over the patches, and its values are non-negative.
    The code of Chefer, Gur and Wolf, "Transformer Interpretability Beyond Attention
    Visualization" (CVPR 2021), weights the LRP relevance of each attention map instead of the
    map itself and chains the blocks as rollout does (identity added, rows renormalised).
    HookedViT has no LRP, so this is the gradient-times-attention form of their rule.

    Raises:
        TypeError, ValueError: as `attention_gradients`; `start_layer` outside `0..n_layers-1`.
    """
    layers = _layers_from(model, start_layer)
    patterns, gradients = attention_gradients(model, images, text_embedding, layers, normalize)

    identity = torch.eye(model.cfg.n_ctx, dtype=patterns[0].dtype, device=patterns[0].device)
    relevance = identity.expand(patterns[0].shape[0], -1, -1)
    for pattern, gradient in zip(patterns, gradients):
        weighted = (gradient * pattern).clamp(min=0).mean(dim=1)
        relevance = relevance + weighted @ relevance
    return readout_row(model, relevance)


def grad_cam(
    model: HookedViT,
    images: Float[Tensor, "batch 3 height width"],
    text_embedding: Float[Tensor, "*batch d_embed"],
    normalize: bool = False,
) -> Float[Tensor, "batch rows cols"]:
    """Compute GradCAM on the last block's attention, with the `grad-cam` package.

    GradCAM is from Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization" (ICCV 2017). This is the ViT variant of Chefer et al.'s (2021)
    evaluation, in which the heads play the channels and the pooled row of the attention pattern
    over the patches plays the activation map. Each head's weight is the mean over patches of
    the similarity's gradient with respect to that row, and the map is
    `relu(sum_h weight_h * row_h)`. grad-cam (1.5.7) then min-max normalises each map to [0, 1],
    dividing by `max + 1e-7`, so a map that is zero everywhere stays zero. It returns float32
    values, cast here to the model's dtype. grad-cam's backward pass writes the parameters'
    `.grad`, so they are set to None afterwards and gradients accumulated before the call are lost.

    Raises:
        TypeError, ValueError: as `attention_gradients`.
    """
    from pytorch_grad_cam import GradCAM

    directions = text_directions(model, images, text_embedding)
    rows, cols = model.cfg.grid_size

    def pooled_row_on_grid(pattern: Tensor) -> Tensor:
        weights = model.pool_weights(pattern.shape[0]).to(pattern)
        row = torch.einsum("bq,bhqk->bhk", weights, pattern)[..., 1:]
        return einops.rearrange(row, "batch head (rows cols) -> batch head rows cols", rows=rows, cols=cols)

    class PatchGridGradCAM(GradCAM):
        def get_target_width_height(self, input_tensor: Tensor) -> tuple[int, int]:
            # NOTE: grad-cam 1.5.7 resizes each map to this size, by default the input's. A later
            # version that stops calling this method would return pixel maps.
            return cols, rows

    targets = [_SimilarityTarget(direction, normalize) for direction in directions]
    cam = PatchGridGradCAM(model, [model.blocks[-1].attn.hook_pattern], reshape_transform=pooled_row_on_grid)
    cam.compute_input_gradient = True
    try:
        with torch.enable_grad():
            maps = cam(images, targets=targets)
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)
    return torch.from_numpy(np.asarray(maps)).to(device=model.W_proj.device, dtype=model.W_proj.dtype)


class _SimilarityTarget:
    """A grad-cam target: one image's similarity with a text direction."""

    def __init__(self, direction: Float[Tensor, " d_embed"], normalize: bool):
        self.direction = direction
        self.normalize = normalize

    def __call__(self, embedding: Float[Tensor, " d_embed"]) -> Tensor:
        return _similarity(embedding[None], self.direction[None].to(embedding), self.normalize)[0]


HEATMAP_METHODS: dict[str, HeatmapMethod] = {
    "raw_attention": raw_attention,
    "rollout": attention_rollout,
    "gradcam": grad_cam,
    "chefer": chefer_relevance,
}
"""The baselines by name, each callable as `method(model, images, text_embedding)`."""


# -- shared helpers --------------------------------------------------------------------------


def readout_row(model: HookedViT, matrix: Float[Tensor, "batch pos pos"]) -> Float[Tensor, "batch rows cols"]:
    """Return the row of `matrix` at the pooled position, over the patches, on the patch grid.

    For class-token pooling this is `matrix[:, 0, 1:]`, the rows that the original methods read.
    For mean pooling it is the mean of the patch rows.
    """
    # NOTE: mean pooling is an extension, because the cited methods were defined for class-token pooling.
    weights = model.pool_weights(matrix.shape[0]).to(matrix)
    row = torch.einsum("bq,bqk->bk", weights, matrix)[:, 1:]
    rows, cols = model.cfg.grid_size
    return einops.rearrange(row, "batch (rows cols) -> batch rows cols", rows=rows, cols=cols)


def text_directions(
    model: HookedViT, images: Tensor, text_embedding: object
) -> Float[Tensor, "batch d_embed"]:
    """Return one text direction per image from `[d_embed]` (shared) or `[batch, d_embed]`.

    Raises:
        TypeError, ValueError: images that `HookedViT` rejects; a text embedding that is not a
            finite float tensor of one of those shapes.
    """
    validate_images(images, model.cfg.image_size)
    d_embed = model.cfg.d_embed
    batch = images.shape[0]
    if not isinstance(text_embedding, Tensor) or text_embedding.ndim not in (1, 2):
        shape = tuple(text_embedding.shape) if isinstance(text_embedding, Tensor) else type(text_embedding).__name__
        raise ValueError(f"text_embedding has shape {shape}; expected [{d_embed}] or [batch, {d_embed}].")
    if text_embedding.shape[-1] != d_embed:
        raise ValueError(
            f"text_embedding has width {text_embedding.shape[-1]}; this model's embeddings have width {d_embed}."
        )
    if text_embedding.ndim == 2 and text_embedding.shape[0] != batch:
        raise ValueError(
            f"text_embedding has {text_embedding.shape[0]} rows for {batch} images; pass one direction per image "
            f"or a single [{d_embed}] direction for all."
        )
    if not torch.is_floating_point(text_embedding) or not bool(torch.isfinite(text_embedding).all()):
        raise ValueError("text_embedding must be floating point without NaN or infinite values.")
    if text_embedding.ndim == 1:
        text_embedding = text_embedding.expand(batch, -1)
    return text_embedding.detach()


def _similarity(embeddings: Tensor, directions: Tensor, normalize: bool) -> Float[Tensor, " batch"]:
    if normalize:
        embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
    return (embeddings * directions).sum(dim=-1)


def _layers_from(model: HookedViT, start_layer: int) -> list[int]:
    if not 0 <= start_layer < model.cfg.n_layers:
        raise ValueError(f"start_layer={start_layer} is out of range; this model has blocks 0..{model.cfg.n_layers - 1}.")
    return list(range(start_layer, model.cfg.n_layers))
