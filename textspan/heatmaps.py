"""Text heatmaps: the score of each image token's direct contribution against text directions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import einops
import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from hooked_clip import HookedViT
from hooked_clip.hooked_clip import HookedCLIP
from textspan._io import atomic_write
from textspan.decomposition import Decomposition, decompose, validate_text_embeddings
from textspan.text_span import TextSpanResult

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
    model: HookedViT | HookedCLIP,
    images: Float[Tensor, "batch 3 height width"],
    texts: Sequence[str] | Float[Tensor, "n_texts d_embed"],
    layers: Sequence[int] | None = None,
    reference_texts: Sequence[str] | Float[Tensor, "n_reference d_embed"] | None = None,
) -> Float[Tensor, "batch n_texts rows cols"]:
    """Decompose `images` and return their text heatmaps on the model's patch grid.

    `texts` are strings (with a `HookedCLIP`, encoded and normalised) or text embeddings.
    `layers` defaults to every layer, so that each map plus the class-token position sums to
    the attention layers' direct effect along the text. With `reference_texts` (for example the
    descriptions of every class), the mean heatmap over them is subtracted from each map: the bias
    normalisation of the segmentation protocol of Gandelsman et al. (2024), footnote 3. Because
    heatmaps are linear in the text direction, that mean is the heatmap of the mean direction.

    Raises:
        TypeError: strings with a `HookedViT`, which has no text tower.
        ValueError: empty texts, text embeddings of the wrong width, layers out of range; and
            the input errors of `HookedViT.forward`.
    """
    visual = model.visual if isinstance(model, HookedCLIP) else model
    directions = _text_directions(model, texts, visual.cfg.d_embed)
    if reference_texts is not None:
        directions = directions - _text_directions(model, reference_texts, visual.cfg.d_embed).mean(dim=0)

    layers = list(range(visual.cfg.n_layers)) if layers is None else list(layers)
    decomposition = decompose(visual, images, token_layers=layers)
    return token_heatmaps(decomposition, directions, visual.cfg.grid_size)


def relative_heatmap(
    model: HookedViT | HookedCLIP,
    images: Float[Tensor, "batch 3 height width"],
    text: str | Float[Tensor, "d_embed"],
    other_text: str | Float[Tensor, "d_embed"],
    layers: Sequence[int] | None = None,
) -> Float[Tensor, "batch rows cols"]:
    """Return the heatmap of `text` minus the heatmap of `other_text` (Figure 8b of Gandelsman et al., 2024)."""
    visual = model.visual if isinstance(model, HookedCLIP) else model
    pair = [text, other_text]
    if all(isinstance(item, str) for item in pair):
        directions = _text_directions(model, pair, visual.cfg.d_embed)
    else:
        directions = torch.stack([torch.as_tensor(item) for item in pair])
    return text_heatmap(model, images, directions[:1] - directions[1:], layers)[:, 0]


@dataclass
class HeadHeatmaps:
    """Per-head heatmaps of the TEXTSPAN texts with the largest and smallest coefficient, per image."""

    layer: int
    head: int
    top_texts: list[str]
    bottom_texts: list[str]
    top: Float[Tensor, "batch rows cols"]
    bottom: Float[Tensor, "batch rows cols"]


def head_heatmaps(
    decomposition: Decomposition,
    span: TextSpanResult,
    text_embeddings: Float[Tensor, "n_candidates d_embed"],
    grid_size: tuple[int, int],
) -> HeadHeatmaps:
    """Map, for one head, the TEXTSPAN texts most and least similar to each image's head output.

    For each image the coefficients are `<c_head, t>` over the head's chosen texts `t`. The
    text with the largest coefficient and the one with the smallest (most negative) are mapped
    on the head's per-token contributions (Figure 6 of Gandelsman et al., 2024).
    `text_embeddings` is the candidate pool the span was chosen from.

    Raises:
        ValueError: a span without layer, head or chosen texts; a layer without per-token terms.
    """
    if span.layer is None or span.head is None or not span.indices:
        raise ValueError("span must be a TEXTSPAN result of one head with at least one text (see text_span_heads).")
    validate_text_embeddings(text_embeddings, decomposition.heads.shape[-1])
    chosen = text_embeddings[span.indices].to(decomposition.heads)
    coefficients = decomposition.heads[:, span.layer, span.head] @ chosen.T
    top, bottom = coefficients.argmax(dim=1), coefficients.argmin(dim=1)

    scores = decomposition.token_scores(chosen, layers=[span.layer], heads=[span.head])[:, 0, 0, 1:]
    rows, cols = grid_size
    maps = einops.rearrange(scores, "batch (rows cols) text -> batch text rows cols", rows=rows, cols=cols)
    batch = torch.arange(maps.shape[0])
    labels = span.texts or [f"#{index}" for index in span.indices]
    return HeadHeatmaps(
        layer=span.layer,
        head=span.head,
        top_texts=[labels[i] for i in top.tolist()],
        bottom_texts=[labels[i] for i in bottom.tolist()],
        top=maps[batch, top],
        bottom=maps[batch, bottom],
    )


def _text_directions(model, texts, width: int) -> Tensor:
    if isinstance(texts, Tensor):
        validate_text_embeddings(texts, width)
        return texts
    if not isinstance(model, HookedCLIP):
        raise TypeError("Texts given as strings need a HookedCLIP (with its text tower); pass text embeddings instead.")
    return model.encode_text(list(texts), normalize=True)


def upsample(heatmaps: Float[Tensor, "*batch rows cols"], size: tuple[int, int]) -> Float[Tensor, "*batch height width"]:
    """Resize heatmaps bilinearly to `size` (height, width) pixels.

    Raises:
        ValueError: heatmaps with fewer than 2 axes, or a size that is not two positive integers.
    """
    if not isinstance(heatmaps, Tensor) or heatmaps.ndim < 2:
        shape = tuple(heatmaps.shape) if isinstance(heatmaps, Tensor) else type(heatmaps).__name__
        raise ValueError(f"heatmaps has shape {shape}; expected a tensor [*batch, rows, cols].")
    if len(size) != 2 or min(int(v) for v in size) <= 0:
        raise ValueError(f"size={size} is invalid; expected (height, width) in pixels, both positive.")
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

    The heatmap is upsampled to the image size, and a colour bar gives its scale.

    Raises:
        ValueError: an image that is not `[height, width, 3]`, or a heatmap that is not 2-D.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image has shape {image.shape}; expected [height, width, 3] (see images.denormalize).")
    if not isinstance(heatmap, Tensor) or heatmap.ndim != 2:
        shape = tuple(heatmap.shape) if isinstance(heatmap, Tensor) else type(heatmap).__name__
        raise ValueError(f"heatmap has shape {shape}; expected one map [rows, cols].")
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

    try:
        atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=100))
    finally:
        plt.close(figure)


def save_head_overlays(
    maps: HeadHeatmaps, pictures: Sequence[np.ndarray], out_dir: str | Path, names: Sequence[str]
) -> list[Path]:
    """Write two PNGs per image: the maps of its most and least similar TEXTSPAN text for one head.

    `pictures` are the images as `[height, width, 3]` arrays in 0..1 (see `images.denormalize`)
    and `names` the file stems. Titles name the text, the layer and the head.

    Raises:
        ValueError: `pictures` or `names` of another length than the batch of `maps`.
    """
    batch = maps.top.shape[0]
    if len(pictures) != batch or len(names) != batch:
        raise ValueError(f"Got {len(pictures)} pictures and {len(names)} names for {batch} heatmaps; expected one each.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (picture, name) in enumerate(zip(pictures, names, strict=True)):
        for which, texts, heatmaps in (("top", maps.top_texts, maps.top), ("bottom", maps.bottom_texts, maps.bottom)):
            path = out_dir / f"{name}_L{maps.layer}H{maps.head}_{which}.png"
            coefficient = "largest" if which == "top" else "smallest"
            title = f'"{texts[index]}", layer {maps.layer}, head {maps.head} ({coefficient} coefficient)'
            save_overlay(picture, heatmaps[index], path, title)
            written.append(path)
    return written
