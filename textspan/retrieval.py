"""Image retrieval from stored direct effects of attention heads: the top images for text directions,
and property-based nearest neighbours under the similarity of chosen heads' contributions.
"""

from __future__ import annotations

import logging
import operator
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from textspan._io import atomic_torch_save

logger = logging.getLogger(__name__)

FILE_FORMAT = "hooked-clip head outputs"
FILE_VERSION = 1
_FILE_KEYS = ("format", "version", "head_outputs", "layers", "image_ids")

# A query or text vector with an L2 norm at or below this value has no direction, so its cosine
# similarity to anything is undefined.
_ZERO_NORM = 1e-12
# How many offending image indices an error message lists.
_MAX_LISTED = 10

HeadIndex = tuple[int, int]
Query = int | Sequence[int] | Tensor


@dataclass(frozen=True)
class RetrievalResult:
    """Retrieved images for each query, best first.

    `indices[q, i]` is the position along the image axis of `head_outputs` of the i-th best image
    for query `q`, and `scores[q, i]` is its score, a dot product or a cosine similarity as the
    function that built the result documents. Equal scores are ordered by lower image index.
    """

    indices: Int[Tensor, "query k"]
    scores: Float[Tensor, "query k"]


class StoredHeadOutputs(NamedTuple):
    """Head contributions read back by `load_head_outputs`, in the order they were saved."""

    head_outputs: Float[Tensor, "n_images layer head d_embed"]
    layers: list[int]
    image_ids: list[str | int]


# ---------------------------------------------------------------------------
# Retrieval


def top_images_for_texts(
    head_outputs: Float[Tensor, "n_images layer head d_embed"],
    layers: Sequence[int],
    layer: int,
    head: int,
    text_embeddings: Float[Tensor, "n_texts d_embed"],
    k: int,
    normalize: bool = False,
) -> RetrievalResult:
    """Rank images by how far one head's direct contribution points along each text direction.

    `head_outputs[:, j]` contains the heads of model layer `layers[j]`, for example
    `Decomposition.heads` with `layers=range(n_layers)`, or only the last layers stored. The score
    of image `i` for text `t` is the dot product `<text_embeddings[t], c_i>` of the text embedding
    with the head's contribution `c_i = head_outputs[i, layers.index(layer), head]`, in the units of
    the joint image-text space. With unit-norm text embeddings it is the length of `c_i` along the
    text direction, the similarity that Gandelsman, Efros and Steinhardt, "Interpreting CLIP's
    Image Representation via Text-Based Decomposition" (ICLR 2024), use to find the top images for
    a TEXTSPAN description. `normalize=True` divides both vectors by their norms first, so the
    score is a cosine similarity in [-1, 1], and a zero contribution scores 0.

    Scores are computed in float32, or float64 for float64 inputs, on the device of
    `head_outputs`. Ranking sorts all images, `O(n_images log n_images)` per text.

    Returns:
        `indices` and `scores` of shape `[n_texts, k]`, best first, equal scores ordered by lower
        image index.

    Raises:
        TypeError: an argument of the wrong type, such as a non-tensor, an integer tensor or a
            float `k`.
        ValueError: `head_outputs` is not 4-D or is empty. `layers` is not one distinct
            non-negative index per stored layer, or `layer` is not in it. `text_embeddings` is
            not `[n_texts, d_embed]`, is empty, is not finite, or has a zero row with
            `normalize=True`. `k` is outside `1..n_images`. The head's contributions contain NaN
            or infinite values.
        IndexError: `head` outside `0..n_heads - 1`.
    """
    _check_head_outputs(head_outputs)
    stored_layers = _check_layers(layers, head_outputs.shape[1])
    contributions = _contributions(head_outputs, stored_layers, [(layer, head)])
    texts = _check_text_embeddings(text_embeddings, contributions, normalize)
    n_images = contributions.shape[0]
    k = _check_k(k, n_images, f"there are {n_images} images in head_outputs")

    if normalize:
        contributions = F.normalize(contributions, dim=-1, eps=_ZERO_NORM)
        texts = F.normalize(texts, dim=-1)

    scores = torch.einsum("n d, t d -> t n", contributions, texts)
    return _rank(scores, k, excluded=None)


def nearest_images(
    head_outputs: Float[Tensor, "n_images layer head d_embed"],
    layers: Sequence[int],
    layer: int,
    head: int,
    query: Query,
    k: int,
    exclude_query: bool = True,
    normalize: bool = True,
) -> RetrievalResult:
    """Find the images whose contribution through one head is most similar to the query's.

    This is property-based retrieval: a head that encodes one property (colour, count, texture)
    ranks images by that property alone. See `nearest_images_for_heads`, which this calls with
    the single head `(layer, head)`, for `query`, `exclude_query`, `normalize`, the returned
    shapes and the exceptions raised.
    """
    return nearest_images_for_heads(
        head_outputs, layers, [(layer, head)], query, k, exclude_query=exclude_query, normalize=normalize
    )


def nearest_images_for_heads(
    head_outputs: Float[Tensor, "n_images layer head d_embed"],
    layers: Sequence[int],
    heads: Sequence[HeadIndex],
    query: Query,
    k: int,
    exclude_query: bool = True,
    normalize: bool = True,
) -> RetrievalResult:
    """Find the images whose summed contribution through `heads` is most similar to the query's.

    Each image is represented by `c_i`, the sum over the `(layer, head)` pairs in `heads` of
    `head_outputs[i, layers.index(layer), head]`, so a property spread over several heads can be
    searched at once. `query` is an image index, a list of image indices, or query vectors
    `[d_embed]` or `[n_queries, d_embed]` in the same space as `c_i`. With `normalize=True` the
    score is the cosine similarity of `c_i` with the query vector, and a zero `c_i` scores 0. With
    `normalize=False` it is their dot product, the similarity that Gandelsman, Efros and
    Steinhardt (ICLR 2024) use for their nearest-neighbour figures.

    `exclude_query=True` drops each query image from its own results. It has no effect on query
    vectors, which have no index, so an image whose contribution equals a query vector is kept.

    Returns:
        `indices` and `scores` of shape `[n_queries, k]` (`n_queries = 1` for a single index or
        a `[d_embed]` vector), best first, equal scores ordered by lower image index.

    Raises:
        TypeError: an argument of the wrong type, such as a bool or float index or a query that
            is neither an index nor a tensor.
        ValueError: `head_outputs` is not 4-D or is empty. `layers` is not one distinct
            non-negative index per stored layer. `heads` is empty, repeated or not pairs, or
            names a layer not in `layers`. A query vector has the wrong width, is not finite, or
            is zero with `normalize=True`. A query image has a zero contribution with
            `normalize=True`. `k` is outside 1 to the number of candidate images. The chosen
            heads' contributions contain NaN or infinite values.
        IndexError: a head outside `0..n_heads - 1`, or a query index outside `0..n_images - 1`.
    """
    _check_head_outputs(head_outputs)
    stored_layers = _check_layers(layers, head_outputs.shape[1])
    contributions = _contributions(head_outputs, stored_layers, heads)
    queries, query_indices = _query_vectors(query, contributions, normalize)

    n_images = contributions.shape[0]
    excluded = query_indices if exclude_query else None
    if excluded is None:
        k = _check_k(k, n_images, f"there are {n_images} images in head_outputs")
    else:
        k = _check_k(
            k,
            n_images - 1,
            f"there are {n_images - 1} candidate images: {n_images} in head_outputs minus the query itself, "
            "which exclude_query=True drops",
        )

    if normalize:
        contributions = F.normalize(contributions, dim=-1, eps=_ZERO_NORM)
        queries = F.normalize(queries, dim=-1)

    scores = torch.einsum("n d, q d -> q n", contributions, queries)
    return _rank(scores, k, excluded=excluded)


def _rank(scores: Float[Tensor, "query n_images"], k: int, excluded: Tensor | None) -> RetrievalResult:
    """Keep the `k` best images of each row, equal scores by lower index, skipping `excluded[q]` in row q."""
    if excluded is not None:
        rows = torch.arange(scores.shape[0], device=scores.device)
        scores[rows, excluded.to(scores.device)] = float("-inf")

    # A stable sort keeps equal scores in index order, which `torch.topk` does not promise.
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return RetrievalResult(indices=order, scores=scores.gather(1, order))


# ---------------------------------------------------------------------------
# Storage


def save_head_outputs(
    path: str | os.PathLike[str],
    head_outputs: Float[Tensor, "n_images layer head d_embed"],
    layers: Sequence[int],
    image_ids: Sequence[str | int],
) -> Path:
    """Write head contributions, the model layer of each stored layer, and image ids with `torch.save`.

    The tensor is copied to the CPU into storage of its own, so saving a slice such as
    `heads[:, -4:]` writes only the slice. The data goes to a temporary file in the same
    directory, which `os.replace` then moves onto `path`, so after a crash `path` is the
    previous file or the new one, never part of a file. Missing parent directories are created.
    `image_ids` (file names or dataset indices) must be distinct, one per image.

    Returns:
        The path written.

    Raises:
        TypeError: `path` is not a string or path, or an argument has the wrong type.
        ValueError: `head_outputs` is not 4-D, is empty, or contains NaN or infinite values.
            `layers` is not one distinct non-negative index per stored layer. `image_ids` has
            the wrong length or repeats an id.
        OSError: the file cannot be written.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}.")
    _check_head_outputs(head_outputs)
    stored_layers = _check_layers(layers, head_outputs.shape[1])
    ids = _check_image_ids(image_ids, head_outputs.shape[0])
    bad = _non_finite_images(head_outputs.flatten(start_dim=1))
    if bad:
        raise ValueError(
            f"head_outputs contains NaN or infinite values at image indices {bad}; "
            "retrieval rejects such values, so recompute or drop those images before saving."
        )

    data = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "head_outputs": head_outputs.detach().to("cpu", copy=True).contiguous(),
        "layers": stored_layers,
        "image_ids": ids,
    }
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(data, target)
    logger.info(
        "Saved head outputs of %d images, layers %s, to %s.", len(ids), stored_layers, target
    )
    return target


def load_head_outputs(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> StoredHeadOutputs:
    """Read a file written by `save_head_outputs` and check its keys and shapes.

    The file is read with `torch.load(..., weights_only=True)`, which builds only tensors and
    plain containers and runs no code from the file.

    Returns:
        `head_outputs [n_images, layer, head, d_embed]` on `map_location`, `layers` and `image_ids`.

    Raises:
        TypeError: `path` is not a string or path.
        FileNotFoundError: `path` does not exist or is not a file.
        ValueError: the file is truncated, is not a `torch.save` file, or lacks a key or has a
            shape that `save_head_outputs` would write. The message names the file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}.")
    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(
            f"Head-output file not found: {str(source)!r} does not exist or is not a regular file. "
            "Pass the path that save_head_outputs wrote."
        )

    data = _load_torch_file(source, map_location)
    problem = "not a dict" if not isinstance(data, dict) else None
    if problem is None:
        missing = [key for key in _FILE_KEYS if key not in data]
        if missing:
            problem = f"missing keys {missing}"
        elif data["format"] != FILE_FORMAT or data["version"] != FILE_VERSION:
            problem = (
                f"format {data['format']!r} version {data['version']!r}, "
                f"expected {FILE_FORMAT!r} version {FILE_VERSION}"
            )
    if problem is not None:
        raise ValueError(
            f"{str(source)!r} is not a head-output file written by save_head_outputs ({problem}). "
            "Check the path, or save the head outputs again."
        )

    try:
        _check_head_outputs(data["head_outputs"])
        layers = _check_layers(data["layers"], data["head_outputs"].shape[1])
        image_ids = _check_image_ids(data["image_ids"], data["head_outputs"].shape[0])
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Head-output file {str(source)!r} is inconsistent: {error} Save the head outputs again."
        ) from error
    return StoredHeadOutputs(data["head_outputs"], layers, image_ids)


def _load_torch_file(source: Path, map_location: str | torch.device) -> object:
    """`torch.load` a file with `weights_only=True`, raising ValueError that names it if it is unreadable."""
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as error:
        # torch.load reports corrupt bytes as many exception types (UnpicklingError, RuntimeError,
        # EOFError, IndexError and more), depending on where the data breaks off. Only the first
        # line of its message is kept, because the rest suggests weights_only=False, which would
        # run code from the file.
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "empty or truncated file"
        raise ValueError(
            f"{str(source)!r} is not a readable head-output file ({type(error).__name__}: {reason}). "
            "It may be truncated or written by another program; save the head outputs again."
        ) from error


# ---------------------------------------------------------------------------
# Input checks


def _as_index(value: object, name: str) -> int:
    """Return `value` as an int, raising TypeError for bools, floats and other non-integers."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got the bool {value!r}. Pass a whole number.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int, got {type(value).__name__} {value!r}. Pass a whole number."
        ) from None


def _check_head_outputs(head_outputs: object) -> None:
    if not isinstance(head_outputs, Tensor):
        raise TypeError(
            f"head_outputs must be a torch.Tensor [n_images, layer, head, d_embed], got "
            f"{type(head_outputs).__name__}. Pass Decomposition.heads or several of them concatenated."
        )
    if head_outputs.ndim != 4:
        raise ValueError(
            f"head_outputs has shape {tuple(head_outputs.shape)}, expected 4 axes [n_images, layer, head, d_embed]. "
            "For the heads of one layer, insert the layer axis with head_outputs.unsqueeze(1)."
        )
    if not torch.is_floating_point(head_outputs):
        raise TypeError(f"head_outputs has dtype {head_outputs.dtype}, expected a floating-point dtype.")
    if head_outputs.numel() == 0:
        raise ValueError(
            f"head_outputs has shape {tuple(head_outputs.shape)} with an empty axis; "
            "it needs at least one image, layer, head and embedding dimension."
        )


def _check_layers(layers: object, n_stored: int) -> list[int]:
    """Return `layers` as a list of distinct non-negative ints, one per stored layer."""
    if isinstance(layers, Tensor):
        layers = layers.tolist() if layers.ndim == 1 else layers
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(
            f"layers must be a sequence of ints such as range(n_layers) or [20, 21, 22, 23], "
            f"got {type(layers).__name__} {layers!r}."
        )
    values = [_as_index(layer, f"layers[{position}]") for position, layer in enumerate(layers)]
    if len(values) != n_stored:
        raise ValueError(
            f"layers lists {len(values)} layers {values}, but head_outputs has {n_stored} along axis 1. "
            "Pass the model layer of each stored layer, for example range(n_layers) for Decomposition.heads."
        )
    negative = [layer for layer in values if layer < 0]
    if negative:
        raise ValueError(
            f"layers contains negative indices {negative}; pass the model's layer indices counted from 0."
        )
    repeated = sorted({layer for layer in values if values.count(layer) > 1})
    if repeated:
        raise ValueError(f"layers lists {repeated} more than once in {values}; each stored layer needs its own index.")
    return values


def _check_image_ids(image_ids: object, n_images: int) -> list[str | int]:
    if isinstance(image_ids, (str, bytes)) or not isinstance(image_ids, Sequence):
        raise TypeError(
            f"image_ids must be a sequence of str or int, one per image, got {type(image_ids).__name__}."
        )
    ids: list[str | int] = []
    for position, image_id in enumerate(image_ids):
        ids.append(image_id if isinstance(image_id, str) else _as_index(image_id, f"image_ids[{position}]"))
    if len(ids) != n_images:
        raise ValueError(
            f"image_ids has {len(ids)} entries, but head_outputs has {n_images} images; pass one id per image."
        )
    counts = Counter(ids)
    repeated = [image_id for image_id, count in counts.items() if count > 1]
    if repeated:
        raise ValueError(f"image_ids repeats {repeated[:_MAX_LISTED]}; each image needs a distinct id.")
    return ids


def _check_heads(heads: object, layers: list[int], n_heads: int) -> list[tuple[int, int]]:
    """Return `heads` as distinct `(position along axis 1, head)` pairs."""
    if isinstance(heads, (str, bytes)) or not isinstance(heads, Sequence):
        raise TypeError(f"heads must be a sequence of (layer, head) pairs, got {type(heads).__name__} {heads!r}.")
    if len(heads) == 0:
        raise ValueError("heads is empty; pass at least one (layer, head) pair.")

    positions = []
    for number, pair in enumerate(heads):
        if not isinstance(pair, Sequence) or isinstance(pair, (str, bytes)) or len(pair) != 2:
            raise ValueError(f"heads[{number}] = {pair!r} is not a (layer, head) pair.")
        positions.append(_head_position(layers, n_heads, pair[0], pair[1]))

    if len(set(positions)) != len(positions):
        repeated = sorted({(layers[p], h) for p, h in positions if positions.count((p, h)) > 1})
        raise ValueError(
            f"heads lists {repeated} more than once, which would count their contributions twice; "
            "list each (layer, head) pair once."
        )
    return positions


def _head_position(layers: list[int], n_heads: int, layer: object, head: object) -> tuple[int, int]:
    layer = _as_index(layer, "layer")
    head = _as_index(head, "head")
    if layer not in layers:
        raise ValueError(
            f"layer {layer} is not among the stored layers {layers}; pass one of them, "
            "or store that layer's head outputs too."
        )
    if not 0 <= head < n_heads:
        raise IndexError(
            f"head {head} is out of range; head_outputs has {n_heads} heads per layer (0..{n_heads - 1})."
        )
    return layers.index(layer), head


def _contributions(
    head_outputs: Float[Tensor, "n_images layer head d_embed"], layers: list[int], heads: Sequence[HeadIndex]
) -> Float[Tensor, "n_images d_embed"]:
    """Sum the contributions of `heads` per image, in float32 or float64, rejecting NaN and infinities."""
    positions = _check_heads(heads, layers, head_outputs.shape[2])
    dtype = torch.promote_types(head_outputs.dtype, torch.float32)

    total = head_outputs[:, positions[0][0], positions[0][1]].to(dtype=dtype, copy=True)
    for position, head in positions[1:]:
        total += head_outputs[:, position, head].to(dtype)

    bad = _non_finite_images(total)
    if bad:
        named = [(layers[position], head) for position, head in positions]
        raise ValueError(
            f"head_outputs contains NaN or infinite values for (layer, head) {named} at image indices {bad}; "
            "recompute those images or drop them from head_outputs."
        )
    return total


def _non_finite_images(values: Float[Tensor, "n_images features"]) -> list[int]:
    """Return up to `_MAX_LISTED` indices of rows with a NaN or infinite value."""
    rows = (~torch.isfinite(values)).any(dim=-1).nonzero().flatten()
    return rows[:_MAX_LISTED].tolist()


def _check_text_embeddings(
    text_embeddings: object, contributions: Float[Tensor, "n_images d_embed"], normalize: bool
) -> Float[Tensor, "n_texts d_embed"]:
    """Return `text_embeddings` on the device and dtype of `contributions`."""
    d_embed = contributions.shape[1]
    if not isinstance(text_embeddings, Tensor):
        raise TypeError(
            f"text_embeddings must be a torch.Tensor [n_texts, {d_embed}], got {type(text_embeddings).__name__}."
        )
    if text_embeddings.ndim != 2:
        raise ValueError(
            f"text_embeddings has shape {tuple(text_embeddings.shape)}, expected [n_texts, {d_embed}]. "
            "For one text, pass text_embedding.unsqueeze(0)."
        )
    if not torch.is_floating_point(text_embeddings):
        raise TypeError(f"text_embeddings has dtype {text_embeddings.dtype}, expected a floating-point dtype.")
    if text_embeddings.shape[0] == 0:
        raise ValueError("text_embeddings has no rows; pass at least one text embedding.")
    if text_embeddings.shape[1] != d_embed:
        raise ValueError(
            f"text_embeddings has width {text_embeddings.shape[1]}, but head_outputs has d_embed {d_embed}. "
            "Encode the texts with the CLIP model whose head outputs you are searching."
        )

    texts = text_embeddings.to(device=contributions.device, dtype=contributions.dtype)
    bad = _non_finite_images(texts)
    if bad:
        raise ValueError(f"text_embeddings rows {bad} contain NaN or infinite values; recompute those embeddings.")
    if normalize:
        zero = (texts.norm(dim=-1) <= _ZERO_NORM).nonzero().flatten()[:_MAX_LISTED].tolist()
        if zero:
            raise ValueError(
                f"text_embeddings rows {zero} have zero norm, so their cosine similarity is undefined; "
                "remove them or pass normalize=False."
            )
    return texts


def _query_vectors(
    query: object, contributions: Float[Tensor, "n_images d_embed"], normalize: bool
) -> tuple[Float[Tensor, "query d_embed"], Int[Tensor, "query"] | None]:
    """Return the query vectors and, for queries given as image indices, those indices."""
    n_images, d_embed = contributions.shape
    if isinstance(query, Tensor) and torch.is_floating_point(query):
        return _check_query_tensor(query, contributions, normalize), None

    if isinstance(query, Tensor):
        if query.dtype == torch.bool or query.ndim > 1:
            raise TypeError(
                f"query is a {query.dtype} tensor of shape {tuple(query.shape)}; pass image indices as an int, "
                f"a list of ints or a 1-D integer tensor, or query vectors as a float tensor [n_queries, {d_embed}]."
            )
        query = query.tolist()
    if isinstance(query, (str, bytes)):
        raise TypeError(f"query must be an image index or a tensor, got the string {query!r}.")
    if isinstance(query, Sequence):
        indices = [_as_index(value, f"query[{number}]") for number, value in enumerate(query)]
        if not indices:
            raise ValueError("query is an empty list; pass at least one image index.")
    else:
        indices = [_as_index(query, "query")]

    out_of_range = [index for index in indices if not 0 <= index < n_images]
    if out_of_range:
        raise IndexError(
            f"query image indices {out_of_range[:_MAX_LISTED]} are out of range; "
            f"head_outputs has {n_images} images (0..{n_images - 1})."
        )
    vectors = contributions[indices]
    if normalize:
        zero = [index for index, norm in zip(indices, vectors.norm(dim=-1).tolist()) if norm <= _ZERO_NORM]
        if zero:
            raise ValueError(
                f"images {zero[:_MAX_LISTED]} have a zero contribution through the chosen heads, so cosine "
                "similarity to them is undefined; query other images or pass normalize=False."
            )
    return vectors, torch.tensor(indices, device=contributions.device)


def _check_query_tensor(
    query: Tensor, contributions: Float[Tensor, "n_images d_embed"], normalize: bool
) -> Float[Tensor, "query d_embed"]:
    d_embed = contributions.shape[1]
    if query.ndim not in (1, 2):
        raise ValueError(f"query has shape {tuple(query.shape)}, expected [{d_embed}] or [n_queries, {d_embed}].")
    vectors = query.unsqueeze(0) if query.ndim == 1 else query
    if vectors.shape[0] == 0:
        raise ValueError("query has no rows; pass at least one query vector.")
    if vectors.shape[1] != d_embed:
        raise ValueError(
            f"query vectors have width {vectors.shape[1]}, but head_outputs has d_embed {d_embed}. "
            "Build the query from the same model's head outputs."
        )

    vectors = vectors.to(device=contributions.device, dtype=contributions.dtype)
    bad = _non_finite_images(vectors)
    if bad:
        raise ValueError(f"query rows {bad} contain NaN or infinite values; pass finite query vectors.")
    if normalize:
        zero = (vectors.norm(dim=-1) <= _ZERO_NORM).nonzero().flatten()[:_MAX_LISTED].tolist()
        if zero:
            raise ValueError(
                f"query rows {zero} have zero norm, so their cosine similarity is undefined; "
                "pass non-zero query vectors or normalize=False."
            )
    return vectors


def _check_k(k: object, n_candidates: int, explanation: str) -> int:
    k = _as_index(k, "k")
    if n_candidates == 0:
        raise ValueError(f"k={k} is invalid: {explanation}. Add images, or pass exclude_query=False.")
    if not 1 <= k <= n_candidates:
        raise ValueError(f"k={k} is invalid: {explanation}. Pass k between 1 and {n_candidates}.")
    return k
