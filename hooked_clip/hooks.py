"""Hook functions for ablations that re-run the model, so indirect effects are included.

Use them with `HookedViT.run_with_hooks(images, fwd_hooks=[(name, hook), ...])`. The direct-effect
counterparts, which leave every other activation unchanged, are in `textspan.ablation`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from hooked_clip.hooked_vit import HookedViT
from hooked_clip.inputs import validate_hook_names

HookFunction = Callable[[Tensor, object], Tensor]


@torch.no_grad()
def activation_means(
    model: HookedViT, image_batches: Iterable[Tensor], names: Sequence[str], progress: bool = True
) -> dict[str, Float[Tensor, "..."]]:
    """Average the activations at hook points `names` over every image of `image_batches`.

    Sums run in float64 and are divided once, so the means do not depend on image order or
    batching. Each mean has the activation's shape without the batch axis.

    Raises:
        KeyError: an unknown hook name. ValueError: no images.
    """
    names = list(names)
    validate_hook_names(names, model.hook_dict)
    sums: dict[str, Tensor] = {}
    count = 0
    for images in tqdm(image_batches, desc="activation means", disable=not progress):
        _, cache = model.run_with_cache(images, names_filter=names)
        for name in names:
            batch_sum = cache[name].to(torch.float64).sum(dim=0)
            sums[name] = sums[name] + batch_sum if name in sums else batch_sum
        count += images.shape[0]
    if count == 0:
        raise ValueError("image_batches yielded no images; pass at least one batch.")
    return {name: (total / count).to(model.cfg.dtype) for name, total in sums.items()}


def mean_ablation_hook(mean: Tensor) -> HookFunction:
    """Return a hook that replaces the whole activation by `mean` (shape without the batch axis)."""

    def replace_with_mean(activation: Tensor, hook) -> Tensor:
        if tuple(mean.shape) != tuple(activation.shape[1:]):
            raise ValueError(
                f"The mean for {hook.name} has shape {tuple(mean.shape)}; the activation is "
                f"{tuple(activation.shape[1:])} per image."
            )
        return mean.to(activation).expand_as(activation).clone()

    return replace_with_mean


def head_ablation_hook(heads: Sequence[int], mean: Tensor | None = None) -> HookFunction:
    """Return a hook for `attn.hook_z` or `attn.hook_result` that ablates `heads`.

    Without `mean` the heads are zero-ablated; with `mean` (the activation's mean, shape without
    the batch axis, e.g. from `activation_means`) they are mean-ablated.
    """
    heads = list(heads)

    def ablate_heads(activation: Tensor, hook) -> Tensor:
        n_heads = activation.shape[2]
        bad = [head for head in heads if not 0 <= head < n_heads]
        if bad:
            raise ValueError(f"Heads {bad} do not exist at {hook.name}; heads are 0..{n_heads - 1}.")
        activation = activation.clone()
        if mean is None:
            activation[:, :, heads] = 0.0
        else:
            activation[:, :, heads] = mean.to(activation)[:, heads]
        return activation

    return ablate_heads
