"""How much of the embedding the TEXTSPAN bases explain: the accuracy curve of Figure 3.

Gandelsman et al. (2024) replace the direct contribution of each studied head by its projection
onto the span of its TEXTSPAN texts, mean-ablate every other term, and measure zero-shot accuracy
as the number of texts per head grows, for several candidate pools.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from textspan.ablation import TermMeans, zero_shot_accuracy
from textspan.decomposition import Decomposition, normalise_layers
from textspan.text_span import TextSpanResult, text_span_heads

logger = logging.getLogger(__name__)


@dataclass
class CompletenessResult:
    """Zero-shot accuracy for each pool and each number of texts per head."""

    counts: list[int]
    accuracy: dict[str, list[float]]
    layers: list[int]
    spans: dict[str, list[TextSpanResult]] = field(default_factory=dict, repr=False)

    def to_markdown(self) -> str:
        """Render the table: one row per pool, one column per number of texts per head."""
        header = "| pool | " + " | ".join(str(count) for count in self.counts) + " |"
        lines = [header, "| --- |" + " --- |" * len(self.counts)]
        for pool, values in self.accuracy.items():
            lines.append(f"| {pool} | " + " | ".join(f"{100 * value:.2f}" for value in values) + " |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"counts": self.counts, "layers": self.layers, "accuracy": self.accuracy}


def projected_embeddings(
    decomposition: Decomposition,
    means: TermMeans,
    spans: Sequence[TextSpanResult],
    n_texts: int,
) -> Float[Tensor, "batch d_embed"]:
    """Return embeddings where each head of `spans` keeps only its projection onto its first `n_texts` texts.

    A studied head's term `c` becomes `mean + P (c - mean)`, with `P` the projection onto the span
    of its first `n_texts` TEXTSPAN directions and `mean` its mean over the reference set, so
    zero texts mean-ablate the head. Every other term is replaced by its mean.

    Raises:
        ValueError: a result without layer and head, or means of another model.
    """
    if tuple(means.heads.shape) != tuple(decomposition.heads.shape[1:]):
        raise ValueError(
            f"means.heads has shape {tuple(means.heads.shape)} but the decomposition's heads are "
            f"{tuple(decomposition.heads.shape[1:])}; compute the means with the same model."
        )
    dtype = decomposition.heads.dtype
    embeddings = (means.embed + means.attn_bias.sum(0) + means.mlps.sum(0) + means.ln_bias).to(dtype)
    embeddings = embeddings.expand(decomposition.heads.shape[0], -1).clone()

    studied = torch.zeros(decomposition.n_layers, decomposition.n_heads, dtype=torch.bool)
    for result in spans:
        if result.layer is None or result.head is None:
            raise ValueError("Each TEXTSPAN result needs its layer and head set; use text_span_heads.")
        head_mean = means.heads[result.layer, result.head].to(dtype)
        basis = result.basis[:n_texts].to(dtype)
        centred = decomposition.heads[:, result.layer, result.head] - head_mean
        embeddings += head_mean + (centred @ basis.T) @ basis
        studied[result.layer, result.head] = True

    others = means.heads.to(dtype)[~studied].sum(dim=0) if bool((~studied).any()) else 0.0
    return embeddings + others


def completeness(
    decomposition: Decomposition,
    means: TermMeans,
    classifier: Float[Tensor, "d_embed n_classes"],
    labels: Int[Tensor, "batch"] | Sequence[int],
    pools: Mapping[str, tuple[Float[Tensor, "n_candidates d_embed"], Sequence[str] | None]],
    layers: Sequence[int] = (-4, -3, -2, -1),
    counts: Sequence[int] = (10, 20, 30, 40, 50, 60),
    fit_decomposition: Decomposition | None = None,
    rank: int | None = None,
    progress: bool = True,
) -> CompletenessResult:
    """Run TEXTSPAN on every head of `layers` for each pool and measure zero-shot accuracy per count.

    `pools` maps a pool name to `(text_embeddings, texts)`; texts may be None (for random
    vectors). TEXTSPAN runs once per pool with `max(counts)` texts on the head outputs of
    `fit_decomposition` (default: `decomposition`), and each count uses the first texts chosen.

    Raises:
        ValueError: empty pools or counts, a count larger than a pool, layers out of range; and
            the errors of `text_span` and `zero_shot_accuracy`.
    """
    if not pools:
        raise ValueError("pools is empty; pass at least one {name: (text_embeddings, texts)} entry.")
    counts = sorted({int(count) for count in counts})
    if not counts or counts[0] <= 0:
        raise ValueError(f"counts={counts} is invalid; expected positive numbers of texts per head.")
    layers = normalise_layers(layers, decomposition.n_layers)
    fit = fit_decomposition or decomposition

    result = CompletenessResult(counts=counts, accuracy={}, layers=layers)
    for name, (text_embeddings, texts) in pools.items():
        logger.info("TEXTSPAN for pool %r (%d candidates) on %d layers", name, text_embeddings.shape[0], len(layers))
        spans = text_span_heads(
            fit.heads[:, layers], text_embeddings, counts[-1], layers, texts=texts, rank=rank, progress=progress
        )
        result.spans[name] = spans
        result.accuracy[name] = [
            zero_shot_accuracy(projected_embeddings(decomposition, means, spans, count), classifier, labels)
            for count in counts
        ]
    return result
