"""Text heatmaps: the score of each image token's direct contribution against text directions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import einops
import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from hooked_clip import HookedViT
from textspan.decomposition import Decomposition, decompose, validate_text_embeddings

logger = logging.getLogger(__name__)


def token_heatmaps(
    decomposition: Decomposition,
    text_embeddings: Float[Tensor, "n_texts d_embed"],
    grid_size: tuple[int, int],
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> Float[Tensor, "batch n_texts rows cols"]:
    """Score each patch token's direct contribution against each text direction.

    The score of patch `i` for text `t` is `<c_token_i, t>` (section 5 of Gandelsman et al.,
    2024) with `c_token_i` summed over the chosen layers and heads; the class-token position
    is left out. Text embeddings are used as given (normalise them first for cosine-like scores).

    Raises:
        ValueError: text embeddings of the wrong width, or a grid that does not match the tokens.
    """
    validate_text_embeddings(text_embeddings, decomposition.heads.shape[-1])
    per_token = decomposition.tokens(layers, heads)[:, 1:]
    rows, cols = grid_size
    if rows * cols != per_token.shape[1]:
        raise ValueError(f"grid_size={grid_size} does not match the {per_token.shape[1]} patch tokens.")
    scores = per_token @ text_embeddings.to(per_token).T
    return einops.rearrange(scores, "batch (rows cols) text -> batch text rows cols", rows=rows, cols=cols)


def text_heatmap(
    model: HookedViT,
    images: Float[Tensor, "batch 3 height width"],
    text_embeddings: Float[Tensor, "n_texts d_embed"],
    layers: Sequence[int] | None = None,
) -> Float[Tensor, "batch n_texts rows cols"]:
    """Decompose `images` and return their text heatmaps on the model's patch grid.

    `layers` defaults to every layer, so that the maps sum (with the class-token position) to
    the attention layers' direct effect.
    """
    validate_text_embeddings(text_embeddings, model.cfg.d_embed)
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    decomposition = decompose(model, images, token_layers=layers)
    return token_heatmaps(decomposition, text_embeddings, model.cfg.grid_size)


def upsample(heatmaps: Float[Tensor, "*batch rows cols"], size: tuple[int, int]) -> Float[Tensor, "*batch height width"]:
    """Resize heatmaps bilinearly to `size` (height, width) pixels."""
    leading = heatmaps.shape[:-2]
    flat = heatmaps.reshape(-1, 1, *heatmaps.shape[-2:]).float()
    resized = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    return resized.reshape(*leading, *size)


def save_overlay(
    image: np.ndarray,
    heatmap: Float[Tensor, "rows cols"],
    path: str | Path,
    title: str,
) -> None:
    """Write a PNG of `image` (`[height, width, 3]`, values 0..1) beside and under its heatmap.

    The heatmap is upsampled to the image size; a colour bar gives its scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = image.shape[:2]
    resized = upsample(heatmap.detach().cpu(), (height, width)).numpy()
    figure, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    axes[0].imshow(image)
    axes[0].set_title("input")
    axes[1].imshow(image)
    overlay = axes[1].imshow(resized, cmap="jet", alpha=0.5)
    axes[1].set_title("heatmap")
    for axis in axes:
        axis.axis("off")
    figure.colorbar(overlay, ax=axes[1], fraction=0.046, pad=0.04)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()

    path = Path(path)
    temporary = path.with_name(path.stem + ".tmp" + path.suffix)
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)
