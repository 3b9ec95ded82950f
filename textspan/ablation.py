"""Mean-ablation of direct effects and zero-shot accuracy (section 3 of Gandelsman et al., 2024)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from textspan.decomposition import Decomposition

logger = logging.getLogger(__name__)


@dataclass
class TermMeans:
    """Means of each decomposition term over a reference set of images.

    Build it with `TermMeans.from_decompositions`, which sums in float64 and divides once, so
    the means do not depend on the order of the images or on how they were split into batches.
    `class_token` is the class token's own direct effect through every head of every layer
    (source position 0), present when the decompositions kept tokens of every layer.
    """

    embed: Float[Tensor, "d_embed"]
    heads: Float[Tensor, "layer head d_embed"]
    attn_bias: Float[Tensor, "layer d_embed"]
    mlps: Float[Tensor, "layer d_embed"]
    ln_bias: Float[Tensor, "d_embed"]
    class_token: Float[Tensor, "d_embed"] | None = None
    n_images: int = 0

    @classmethod
    def from_decompositions(cls, decompositions: Iterable[Decomposition]) -> "TermMeans":
        """Average every term over all images of `decompositions` (one per batch).

        Raises:
            ValueError: no images, or decompositions of different shapes or conventions.
        """
        sums: dict[str, Tensor] = {}
        count = 0
        convention = None
        for decomposition in decompositions:
            if convention is None:
                convention = decomposition.mean_and_bias
            elif decomposition.mean_and_bias != convention:
                raise ValueError("The decompositions mix mean_and_bias conventions; use one for all batches.")
            for name, term in _terms(decomposition).items():
                batch_sum = term.to(torch.float64).sum(dim=0)
                if name in sums and sums[name].shape != batch_sum.shape:
                    raise ValueError(f"Term {name!r} changes shape between batches: {tuple(sums[name].shape)} "
                                     f"and {tuple(batch_sum.shape)}; use one model for all batches.")
                sums[name] = sums[name] + batch_sum if name in sums else batch_sum
            count += decomposition.heads.shape[0]
        if count == 0:
            raise ValueError("No images: pass at least one decomposition with a non-empty batch.")
        means = {name: total / count for name, total in sums.items()}
        return cls(n_images=count, **means)


def _terms(decomposition: Decomposition) -> dict[str, Tensor]:
    terms = {
        "embed": decomposition.embed,
        "heads": decomposition.heads,
        "attn_bias": decomposition.attn_bias,
        "mlps": decomposition.mlps,
        "ln_bias": decomposition.ln_bias,
    }
    if set(decomposition.token_layers) == set(range(decomposition.n_layers)):
        terms["class_token"] = decomposition.tokens()[:, 0]
    return terms


@dataclass(frozen=True)
class Ablation:
    """The set of terms that `mean_ablate` replaces by their means.

    `attention_layers` replaces whole attention layers (every head and the output bias).
    `heads` lists `(layer, head)` pairs, and `mlps` lists MLP layers (`True` for all).
    `embed` is the initial residual-stream term. `class_token` is the class token's direct
    effect through the attention heads, source position 0 (Table 5 of Gandelsman et al., 2024).
    """

    attention_layers: Sequence[int] = ()
    heads: Sequence[tuple[int, int]] = ()
    mlps: Sequence[int] | bool = ()
    embed: bool = False
    class_token: bool = False
    label: str = field(default="", compare=False)

    @classmethod
    def attention_up_to(cls, layer: int) -> "Ablation":
        """Mean-ablate the attention layers `0..layer` (all of them, heads and biases)."""
        return cls(attention_layers=tuple(range(layer + 1)), label=f"attention 0..{layer}")


def mean_ablate(
    decomposition: Decomposition, means: TermMeans, ablation: Ablation
) -> Float[Tensor, "batch d_embed"]:
    """Return the embeddings with the terms of `ablation` replaced by their means.

    Ablating nothing returns `decomposition.total()` exactly. When a head is ablated both on
    its own and through its layer, it is replaced once.

    Raises:
        ValueError: layers or heads that do not exist, means of another shape, or a
            class-token ablation without the per-token terms of every layer.
    """
    n_layers, n_heads = decomposition.n_layers, decomposition.n_heads
    _check_means(decomposition, means)
    embeddings = decomposition.total().clone()

    ablated_heads = torch.zeros(n_layers, n_heads, dtype=torch.bool)
    for layer in _layers(ablation.attention_layers, n_layers, "attention_layers"):
        ablated_heads[layer] = True
        embeddings += means.attn_bias[layer].to(embeddings) - decomposition.attn_bias[:, layer]
    for layer, head in ablation.heads:
        _layers([layer], n_layers, "heads")
        if not 0 <= head < n_heads:
            raise ValueError(f"Head ({layer}, {head}) does not exist; heads are 0..{n_heads - 1}.")
        ablated_heads[layer, head] = True
    if bool(ablated_heads.any()):
        difference = means.heads.to(embeddings)[None] - decomposition.heads
        embeddings += (difference * ablated_heads.to(embeddings)[None, :, :, None]).sum(dim=(1, 2))

    mlp_layers = range(n_layers) if ablation.mlps is True else ablation.mlps or ()
    for layer in _layers(mlp_layers, n_layers, "mlps"):
        embeddings += means.mlps[layer].to(embeddings) - decomposition.mlps[:, layer]
    if ablation.embed:
        embeddings += means.embed.to(embeddings) - decomposition.embed
    if ablation.class_token:
        if means.class_token is None or set(decomposition.token_layers) != set(range(n_layers)):
            raise ValueError(
                "Class-token ablation needs the per-token terms of every layer, in the decomposition and in the "
                "means: call decompose(..., token_layers=range(n_layers)) for both."
            )
        embeddings += means.class_token.to(embeddings) - decomposition.tokens()[:, 0]
    return embeddings


def _layers(layers: Iterable[int], n_layers: int, what: str) -> list[int]:
    layers = [int(layer) for layer in layers]
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"{what} lists layers {bad} that do not exist; the model has layers 0..{n_layers - 1}.")
    return layers


def _check_means(decomposition: Decomposition, means: TermMeans) -> None:
    if not isinstance(means, TermMeans):
        raise TypeError(f"means must be a TermMeans (see TermMeans.from_decompositions), got {type(means).__name__}.")
    expected = tuple(decomposition.heads.shape[1:])
    if tuple(means.heads.shape) != expected:
        raise ValueError(
            f"means.heads has shape {tuple(means.heads.shape)} but the decomposition's heads are {expected}; "
            "compute the means with the same model."
        )


def zero_shot_accuracy(
    embeddings: Float[Tensor, "batch d_embed"],
    classifier: Float[Tensor, "d_embed n_classes"],
    labels: Int[Tensor, "batch"] | Sequence[int],
    top_k: int = 1,
) -> float:
    """Return the fraction of images whose label is among the `top_k` classes of highest similarity.

    `classifier` has one column per class, as `HookedCLIP.zero_shot_classifier` returns it.

    Raises:
        ValueError: mismatched shapes or lengths, labels out of range, NaN, or an empty batch.
    """
    labels = torch.as_tensor(labels)
    if embeddings.ndim != 2 or classifier.ndim != 2 or embeddings.shape[1] != classifier.shape[0]:
        raise ValueError(
            f"embeddings {tuple(embeddings.shape)} and classifier {tuple(classifier.shape)} do not match; "
            "expected [batch, d_embed] and [d_embed, n_classes]."
        )
    if embeddings.shape[0] == 0:
        raise ValueError("embeddings is empty; pass at least one image.")
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(f"labels has shape {tuple(labels.shape)}; expected one label per image ({embeddings.shape[0]}).")
    if labels.dtype.is_floating_point or bool((labels < 0).any()) or bool((labels >= classifier.shape[1]).any()):
        raise ValueError(f"labels must be integers in 0..{classifier.shape[1] - 1}; got values {labels.unique()[:10].tolist()}.")
    if not 1 <= top_k <= classifier.shape[1]:
        raise ValueError(f"top_k={top_k} is invalid; expected 1..{classifier.shape[1]}.")
    if not bool(torch.isfinite(embeddings).all()):
        raise ValueError("embeddings contain NaN or infinite values.")

    similarities = embeddings.to(classifier) @ classifier
    top = similarities.topk(top_k, dim=1).indices
    return float((top == labels.to(top.device)[:, None]).any(dim=1).float().mean())


def accumulated_ablation_curve(
    decomposition: Decomposition,
    means: TermMeans,
    classifier: Float[Tensor, "d_embed n_classes"],
    labels: Int[Tensor, "batch"] | Sequence[int],
) -> list[float]:
    """Return zero-shot accuracy as attention layers `0..l` are mean-ablated, for l = -1 .. n_layers - 1.

    Entry 0 is the accuracy without ablation (Figure 2 of Gandelsman et al., 2024).
    """
    curve = [zero_shot_accuracy(decomposition.total(), classifier, labels)]
    for layer in range(decomposition.n_layers):
        ablated = mean_ablate(decomposition, means, Ablation.attention_up_to(layer))
        curve.append(zero_shot_accuracy(ablated, classifier, labels))
    return curve


def ablation_report(
    decomposition: Decomposition,
    means: TermMeans,
    classifier: Float[Tensor, "d_embed n_classes"],
    labels: Int[Tensor, "batch"] | Sequence[int],
) -> dict[str, float]:
    """Return the accuracies of Tables 1 and 5: base, MLPs ablated, and MLPs and class token ablated.

    The last entry needs the per-token terms of every layer; without them it is left out.
    """
    report = {
        "base": zero_shot_accuracy(decomposition.total(), classifier, labels),
        "mlps_ablated": zero_shot_accuracy(mean_ablate(decomposition, means, Ablation(mlps=True)), classifier, labels),
    }
    if means.class_token is not None and set(decomposition.token_layers) == set(range(decomposition.n_layers)):
        both = mean_ablate(decomposition, means, Ablation(mlps=True, class_token=True))
        report["mlps_and_class_token_ablated"] = zero_shot_accuracy(both, classifier, labels)
    return report
