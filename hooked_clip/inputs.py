"""Checks on user input: image batches, hook names and model names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import torch
from torch import Tensor


def close_matches(name: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """Return up to `n` entries of `choices` that resemble `name`, best first."""
    choices = list(choices)
    same_letters = [choice for choice in choices if choice.lower() == name.lower()]
    matches = same_letters + [
        match for match in difflib.get_close_matches(name, choices, n=n, cutoff=0.6) if match not in same_letters
    ]
    matches = matches[:n]
    if not matches:
        lowered = name.lower()
        matches = [c for c in choices if lowered in c.lower() or c.lower() in lowered][:n]
    return matches


def validate_images(images: object, image_size: tuple[int, int]) -> None:
    """Raise unless `images` is a finite float batch `[batch, 3, height, width]` of the trained size.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, empty batch, channels other than 3, a size other than
            `image_size`, or NaN or infinite pixels.
    """
    if not isinstance(images, Tensor):
        raise TypeError(
            f"images must be a torch.Tensor of shape [batch, 3, height, width], got {type(images).__name__}. "
            "Convert PIL images with the model's preprocess transform and stack them with torch.stack."
        )
    if images.ndim == 3:
        raise ValueError(
            f"images has shape {tuple(images.shape)}, a single image without a batch axis; "
            "expected [batch, 3, height, width]. Use images.unsqueeze(0)."
        )
    if images.ndim != 4:
        raise ValueError(f"images has shape {tuple(images.shape)}; expected 4 axes [batch, 3, height, width].")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (batch size 0); pass at least one image.")
    if images.shape[1] != 3:
        raise ValueError(
            f"images has {images.shape[1]} channel(s) in shape {tuple(images.shape)}; expected 3 (RGB). "
            "Convert greyscale or RGBA pictures to RGB before preprocessing (PIL: image.convert('RGB'))."
        )
    height, width = images.shape[-2:]
    if (height, width) != tuple(image_size):
        raise ValueError(
            f"images are {height}x{width} pixels (height x width); this model expects "
            f"{image_size[0]}x{image_size[1]}, the size it was trained on. Resize and crop them with the "
            "model's preprocess transform."
        )
    if not torch.is_floating_point(images):
        raise TypeError(
            f"images has dtype {images.dtype}; expected floating-point pixels normalised by the model's "
            "preprocess transform."
        )
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad_images = (~finite).flatten(1).any(dim=1).nonzero().flatten().tolist()
        raise ValueError(
            f"images contain NaN or infinite values (in batch positions {bad_images[:10]}); "
            "check the loading and normalisation of those images."
        )


def validate_hook_names(names: object, known: Iterable[str]) -> None:
    """Raise KeyError for any hook name in `names` (a string or list) that the model lacks.

    Filters given as functions are left to the caller, because they cannot be checked.
    """
    if names is None or callable(names):
        return
    candidates = [names] if isinstance(names, str) else list(names)
    known = list(known)
    known_set = set(known)
    for name in candidates:
        if name not in known_set:
            suggestions = close_matches(str(name), known)
            hint = f" Did you mean {suggestions}?" if suggestions else " List them with model.hook_dict.keys()."
            raise KeyError(f"Unknown hook name {name!r}.{hint}")
