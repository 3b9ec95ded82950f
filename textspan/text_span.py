"""TEXTSPAN: a greedy basis of text directions for the outputs of one attention head.

Algorithm 1 of Gandelsman, Efros and Steinhardt, "Interpreting CLIP's Image Representation via
Text-Based Decomposition" (ICLR 2024). Each step picks the candidate text whose (projected)
embedding has the largest variance of dot products with the head outputs over the images, then
projects that direction out of the head outputs and out of every candidate.

The implementation works on the covariance of the head outputs in the coordinates of their
principal directions. The variance of candidate `j` after the steps so far is
`x_j P Cov P x_j^T` with `P` the projection away from the chosen directions. It is updated in
`O(M * (rank + steps))` per step instead of recomputing `R C^T` in `O(M * K * d)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from textspan._io import atomic_write_text

logger = logging.getLogger(__name__)

# A candidate whose squared norm after projection falls below this fraction of its squared norm
# before the first step lies in the span already chosen (a duplicate, or a zero vector) and is skipped.
NORM_TOLERANCE = 1e-10


@dataclass
class TextSpanResult:
    """The texts that TEXTSPAN chose for one head, in the order chosen.

    `variances[i]` is the variance over images of the head outputs along the i-th chosen
    direction, after projecting out the earlier ones. `explained[i]` is the fraction of the
    head outputs' total variance that the first `i + 1` directions explain (equation 7 of
    Gandelsman et al., 2024). `basis` holds the orthonormal directions `[n_chosen, d]` whose span
    the algorithm builds, and `projection = basis.T @ basis` maps head outputs onto that span.
    """

    indices: list[int]
    texts: list[str] | None
    variances: list[float]
    explained: list[float]
    basis: Float[Tensor, "n_chosen d"] = field(repr=False)
    reconstruction: Float[Tensor, "n_images d"] | None = field(default=None, repr=False)
    layer: int | None = None
    head: int | None = None

    @property
    def projection(self) -> Float[Tensor, "d d"]:
        return self.basis.T @ self.basis

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict (the reconstruction is left out)."""
        return {
            "layer": self.layer,
            "head": self.head,
            "indices": self.indices,
            "texts": self.texts,
            "variances": self.variances,
            "explained": self.explained,
            "basis": self.basis.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "TextSpanResult":
        return cls(
            indices=list(data["indices"]),
            texts=data.get("texts"),
            variances=list(data["variances"]),
            explained=list(data["explained"]),
            basis=torch.tensor(data["basis"], dtype=torch.float64),
            layer=data.get("layer"),
            head=data.get("head"),
        )

    def save(self, path: str | Path) -> None:
        """Write the result as JSON to `path` (through a temporary file, so a crash leaves no half file)."""
        atomic_write_text(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> "TextSpanResult":
        return cls.from_dict(json.loads(Path(path).read_text()))


def validate_text_span_inputs(
    head_outputs: Tensor, text_embeddings: Tensor, n_texts: int, texts: Sequence[str] | None
) -> None:
    """Raise ValueError or TypeError for TEXTSPAN inputs of the wrong shape, size or content."""
    for name, tensor in (("head_outputs", head_outputs), ("text_embeddings", text_embeddings)):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}.")
        if tensor.ndim != 2:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}; expected 2 axes.")
        if not torch.is_floating_point(tensor):
            raise TypeError(f"{name} has dtype {tensor.dtype}; expected a floating-point tensor.")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} contains NaN or infinite values; remove or fix those rows.")
    n_images, width = head_outputs.shape
    n_candidates, text_width = text_embeddings.shape
    if n_images < 2:
        raise ValueError(f"head_outputs has {n_images} image(s); the variance over images needs at least 2.")
    if text_width != width:
        raise ValueError(
            f"text_embeddings have width {text_width} but head_outputs have width {width}; both must be "
            "vectors in the joint image-text space of the same model."
        )
    if n_candidates == 0:
        raise ValueError("text_embeddings is empty; pass a pool of candidate descriptions.")
    if not isinstance(n_texts, int) or n_texts <= 0:
        raise ValueError(f"n_texts={n_texts!r} is invalid; expected a positive integer.")
    if n_texts > n_candidates:
        raise ValueError(
            f"n_texts={n_texts} is larger than the pool of {n_candidates} candidate texts; "
            "pass a larger pool or ask for fewer texts."
        )
    if texts is not None and len(texts) != n_candidates:
        raise ValueError(f"texts has {len(texts)} entries but text_embeddings has {n_candidates} rows.")


@contextlib.contextmanager
def _single_thread():
    """Run LAPACK on one thread: for d <= 1024 it takes milliseconds, while two threads on a busy
    CPU were measured to take over a second for a 128 x 128 matrix (torch 2.14, 2-core CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def principal_directions(
    head_outputs: Float[Tensor, "n_images d"], rank: int | None = None, centre: bool = True
) -> tuple[Float[Tensor, "d r"], Float[Tensor, "r"] | Float[Tensor, "r r"], float]:
    """Return the top principal directions of the head outputs, their covariance, and the total variance.

    `rank=None` keeps every direction with non-negligible variance. With `centre=True` the
    directions are eigenvectors of the covariance, so the covariance of the centred outputs in
    these coordinates is diagonal and is returned as a vector of variances. With `centre=False`
    they are eigenvectors of the uncentred second moment, which keep the mean direction in the
    projection, and the covariance is returned as a matrix.

    Raises:
        ValueError: `rank` larger than the number of images or the width.
    """
    n_images, width = head_outputs.shape
    if rank is not None and not 0 < rank <= min(n_images, width):
        raise ValueError(
            f"rank={rank} is invalid for {n_images} images of width {width}; expected 1..{min(n_images, width)}."
        )
    # Accumulated in float64 even for float32 outputs: in float32 the null directions of the
    # covariance (fewer images than dimensions) come out near 1e-8 of the largest variance and
    # would pass as real directions of the head outputs.
    outputs = head_outputs.to(torch.float64)
    centred = outputs - outputs.mean(dim=0)
    covariance = centred.T @ centred / n_images
    moment = covariance if centre else outputs.T @ outputs / n_images
    with _single_thread():
        eigenvalues, eigenvectors = torch.linalg.eigh(moment)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    total = float(torch.diagonal(covariance).sum())

    # Rounding the outputs to their dtype adds variance of about eps^2 of the largest along every
    # direction. So directions below 100 eps^2 (1e-12 at least) are rounding, not signal.
    relative_floor = max(1e-12, 100 * torch.finfo(head_outputs.dtype).eps ** 2)
    significant = int((eigenvalues > eigenvalues[0].clamp_min(0) * relative_floor).sum())
    significant = min(significant, n_images - 1 if centre else n_images)
    keep = significant if rank is None else min(rank, significant)
    directions = eigenvectors[:, :keep]
    if centre:
        return directions, eigenvalues[:keep].clamp_min(0), total
    return directions, directions.T @ covariance @ directions, total


@torch.no_grad()
def text_span(
    head_outputs: Float[Tensor, "n_images d"],
    text_embeddings: Float[Tensor, "n_candidates d"],
    n_texts: int,
    texts: Sequence[str] | None = None,
    rank: int | None = None,
    normalize_texts: bool = False,
    reconstruct: bool = True,
    centre: bool = True,
) -> TextSpanResult:
    """Choose `n_texts` candidate texts that span the variation of one head's outputs.

    `head_outputs` are the head's direct contributions to the image embedding for K images;
    `text_embeddings` the text embeddings of M candidates in the same space. The candidates are
    first projected onto the span of the head outputs' principal directions (`rank` of them, or
    all with non-zero variance when None) and, with `normalize_texts`, rescaled to unit norm.
    A candidate that becomes zero, such as a duplicate of a chosen one, is never chosen. If no
    candidate with non-zero norm remains, the result contains fewer than `n_texts` texts and a
    warning is logged. Ties go to the lowest index. Computation is in float64.

    `centre=True` (the default) takes the principal directions of the centred outputs, because
    TEXTSPAN maximises variance over images, which the mean does not affect. `centre=False` takes
    them from the uncentred second moment, so the mean direction stays in the projection.

    Raises:
        ValueError, TypeError: inputs of the wrong shape or width, NaN, fewer than 2 images,
            an empty pool or a pool smaller than `n_texts`.
    """
    validate_text_span_inputs(head_outputs, text_embeddings, n_texts, texts)
    directions, variances, total_variance = principal_directions(head_outputs, rank, centre)
    outputs = head_outputs.to(torch.float64)

    candidates = text_embeddings.to(device=outputs.device, dtype=torch.float64) @ directions
    if normalize_texts:
        candidates = candidates / candidates.norm(dim=1, keepdim=True).clamp_min(1e-30)
    chosen_coordinates = _greedy_span(candidates, variances, n_texts)

    chosen = [index for index, _ in chosen_coordinates]
    if len(chosen) < n_texts:
        logger.warning(
            "TEXTSPAN stopped after %d of %d texts: no remaining candidate has a component outside the chosen span.",
            len(chosen), n_texts,
        )
    basis = torch.stack([q for _, q in chosen_coordinates]) @ directions.T if chosen else outputs.new_zeros(0, outputs.shape[1])
    step_variances = [float(q @ _times_covariance(variances, q)) for _, q in chosen_coordinates]
    explained = torch.tensor(step_variances, dtype=torch.float64).cumsum(0) / max(total_variance, 1e-300)

    return TextSpanResult(
        indices=chosen,
        texts=[texts[i] for i in chosen] if texts is not None else None,
        variances=step_variances,
        explained=explained.tolist(),
        basis=basis,
        reconstruction=outputs @ basis.T @ basis if reconstruct else None,
    )


def _times_covariance(covariance: Tensor, vectors: Tensor) -> Tensor:
    """Multiply `vectors` (last axis r) by the covariance, given as a diagonal vector or an r x r matrix."""
    return vectors * covariance if covariance.ndim == 1 else vectors @ covariance


def _greedy_span(candidates: Float[Tensor, "M r"], covariance: Tensor, n_texts: int) -> list[tuple[int, Tensor]]:
    """Run the greedy selection on candidates expressed in principal coordinates.

    `covariance` is the head outputs' covariance in these coordinates (a vector when diagonal).
    For the orthonormal chosen directions `Q`, the variance of candidate `j` is
    `g_j - 2 sum_s A_js B_js + (A S A^T)_jj`, with `A = X Q`, `B = X Cov Q`, `S = Q^T Cov Q`,
    and its squared norm is `|x_j|^2 - sum_s A_js^2`.
    """
    base_variance = (_times_covariance(covariance, candidates) * candidates).sum(dim=1)
    base_norm = (candidates * candidates).sum(dim=1)

    cross = torch.zeros_like(base_variance)  # sum_s A_js B_js
    quadratic = torch.zeros_like(base_variance)  # (A S A^T)_jj
    norm_removed = torch.zeros_like(base_variance)  # sum_s A_js^2
    columns = candidates.new_empty(candidates.shape[0], n_texts)  # A, filled column by column
    directions = candidates.new_empty(n_texts, candidates.shape[1])  # the chosen orthonormal q_s

    chosen: list[tuple[int, Tensor]] = []
    for step in range(n_texts):
        norms = base_norm - norm_removed
        variance = base_variance - 2 * cross + quadratic
        alive = norms > NORM_TOLERANCE * base_norm.clamp_min(1e-300)
        if not bool(alive.any()):
            break
        variance = torch.where(alive, variance, torch.full_like(variance, -torch.inf))
        best = int(torch.argmax(variance))

        # Project the earlier directions out twice, which keeps Q orthonormal to rounding error.
        direction = candidates[best].clone()
        previous = directions[:step]
        for _ in range(2):
            direction -= previous.T @ (previous @ direction)
        direction /= direction.norm()

        # B's new column is X Cov q, so one pass over X gives both A's and B's columns.
        covariance_direction = _times_covariance(covariance, direction)
        a, b = (candidates @ torch.stack([direction, covariance_direction], dim=1)).unbind(dim=1)
        if step:
            quadratic += 2 * a * (columns[:, :step] @ (previous @ covariance_direction))
        quadratic += (direction @ covariance_direction) * a * a
        cross += a * b
        norm_removed += a * a
        columns[:, step] = a
        directions[step] = direction
        chosen.append((best, direction))
    return chosen


@torch.no_grad()
def text_span_plain(
    head_outputs: Float[Tensor, "n_images d"],
    text_embeddings: Float[Tensor, "n_candidates d"],
    n_texts: int,
    rank: int | None = None,
    normalize_texts: bool = False,
    centre: bool = True,
    dtype: torch.dtype = torch.float64,
) -> list[int]:
    """Run Algorithm 1 literally (`D = R C^T` each step, in `dtype`) and return the chosen indices.

    A slow baseline for benchmarks; it projects the candidates the same way as `text_span`.
    """
    validate_text_span_inputs(head_outputs, text_embeddings, n_texts, None)
    outputs = head_outputs.to(dtype)
    directions, _, _ = principal_directions(outputs, rank, centre)
    directions = directions.to(dtype)
    R = text_embeddings.to(dtype) @ directions @ directions.T
    if normalize_texts:
        R = R / R.norm(dim=1, keepdim=True).clamp_min(1e-30)
    C = outputs.clone()
    start_norms = (R * R).sum(dim=1)

    chosen = []
    for _ in range(n_texts):
        D = R @ C.T
        variance = D.var(dim=1, unbiased=False)
        alive = (R * R).sum(dim=1) > NORM_TOLERANCE * start_norms.clamp_min(1e-300)
        if not bool(alive.any()):
            break
        variance = torch.where(alive, variance, torch.full_like(variance, -torch.inf))
        best = int(torch.argmax(variance))
        chosen.append(best)
        r = R[best].clone()
        C = C - (C @ r)[:, None] * r / (r @ r)
        R = R - (R @ r)[:, None] * r / (r @ r)
    return chosen


def text_span_heads(
    head_outputs: Float[Tensor, "n_images layer head d"],
    text_embeddings: Float[Tensor, "n_candidates d"],
    n_texts: int,
    layers: Sequence[int],
    texts: Sequence[str] | None = None,
    rank: int | None = None,
    normalize_texts: bool = False,
    progress: bool = True,
) -> list[TextSpanResult]:
    """Run `text_span` for every head of the given layers; return one result per head.

    `head_outputs[:, i]` contains the outputs of `layers[i]` (for example `decomposition.heads[:, -4:]`
    with `layers=range(n_layers - 4, n_layers)`). Results come layer by layer, head by head.

    Raises:
        ValueError: `layers` whose length differs from axis 1 of `head_outputs`; and the errors
            of `text_span`.
    """
    from tqdm.auto import tqdm

    if head_outputs.ndim != 4:
        raise ValueError(f"head_outputs has shape {tuple(head_outputs.shape)}; expected [n_images, layer, head, d].")
    layers = list(layers)
    if len(layers) != head_outputs.shape[1]:
        raise ValueError(f"layers lists {len(layers)} layers but head_outputs has {head_outputs.shape[1]} on axis 1.")

    results = []
    pairs = [(slot, head) for slot in range(len(layers)) for head in range(head_outputs.shape[2])]
    for slot, head in tqdm(pairs, desc="TEXTSPAN heads", disable=not progress):
        result = text_span(
            head_outputs[:, slot, head], text_embeddings, n_texts, texts, rank, normalize_texts, reconstruct=False
        )
        result.layer, result.head = layers[slot], head
        results.append(result)
    return results


def save_text_spans(path: str | Path, results: Sequence[TextSpanResult], metadata: dict | None = None) -> None:
    """Write TEXTSPAN results of many heads, and optional metadata, to one JSON file atomically."""
    payload = {"metadata": metadata or {}, "results": [result.to_dict() for result in results]}
    atomic_write_text(path, json.dumps(payload))


def load_text_spans(path: str | Path) -> list[TextSpanResult]:
    """Read results written by `save_text_spans`.

    Raises:
        FileNotFoundError: `path` does not exist. ValueError: the file is not such a JSON file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TEXTSPAN results file {str(path)!r} does not exist.")
    try:
        payload = json.loads(path.read_text())
        return [TextSpanResult.from_dict(entry) for entry in payload["results"]]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{str(path)!r} is not a TEXTSPAN results file written by save_text_spans ({error})."
        ) from error


def text_spans_to_markdown(results: Sequence[TextSpanResult], n_texts: int | None = None) -> str:
    """Render results as a Markdown table: one row per head, its texts in the order chosen.

    `n_texts` limits the texts shown per head (all by default). Indices stand in for texts when
    the results carry no texts.
    """
    lines = ["| head | texts, in the order chosen | variance explained |", "| --- | --- | --- |"]
    for result in results:
        labels = result.texts if result.texts is not None else [f"#{index}" for index in result.indices]
        labels = labels[:n_texts] if n_texts is not None else labels
        shown = min(len(labels), len(result.explained))
        explained = f"{result.explained[shown - 1]:.3f}" if shown else "0"
        cells = "<br>".join(label.replace("|", "\\|") for label in labels)
        lines.append(f"| L{result.layer}.H{result.head} | {cells} | {explained} |")
    return "\n".join(lines) + "\n"
