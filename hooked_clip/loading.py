"""Build OpenCLIP models by name with a pretrained tag, a local checkpoint, or random weights."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import open_clip
import torch
from torch import nn

from hooked_clip.inputs import close_matches

logger = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")


class PretrainedWeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be downloaded and are not in the local cache."""


def validate_model_name(model_name: str) -> None:
    """Raise ValueError, listing close names, unless `model_name` is in OpenCLIP's model list."""
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"model_name must be a non-empty string such as 'ViT-B-16', got {model_name!r}.")
    if model_name.startswith(("hf-hub:", "local-dir:")):
        return
    known = open_clip.list_models()
    if model_name not in known:
        suggestions = close_matches(model_name, known)
        hint = f"Close names: {suggestions}." if suggestions else "See open_clip.list_models()."
        raise ValueError(f"Unknown OpenCLIP model name {model_name!r}. {hint}")


def is_checkpoint_path(pretrained: str) -> bool:
    """Return True when `pretrained` names a file rather than an OpenCLIP pretrained tag."""
    return (
        os.sep in pretrained
        or "/" in pretrained
        or pretrained.startswith(("~", "."))
        or pretrained.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(pretrained).exists()
    )


def create_open_clip_model(
    model_name: str,
    pretrained: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | None = None,
    **model_kwargs,
) -> nn.Module:
    """Create an OpenCLIP model with pretrained weights, a checkpoint file, or random weights.

    `pretrained=None` builds random weights and logs a warning. A string that names an
    existing file, or looks like a path, is loaded as a checkpoint. Any other string is an
    OpenCLIP pretrained tag (see `open_clip.list_pretrained_tags_by_model`). Weights are
    never replaced by random ones when loading fails.

    Raises:
        ValueError: unknown model name or tag.
        FileNotFoundError: a checkpoint path that does not exist.
        PretrainedWeightsUnavailableError: a valid tag whose weights cannot be downloaded here
            and are not in the cache.
    """
    validate_model_name(model_name)

    if pretrained is None:
        logger.warning("Building %s with random weights (pretrained=None).", model_name)
        return open_clip.create_model(model_name, pretrained=None, device=device, **model_kwargs)

    pretrained = os.fspath(pretrained)
    if is_checkpoint_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Checkpoint file {str(path)!r} does not exist. Pass an existing OpenCLIP checkpoint path, "
                "a pretrained tag, or random weights (pretrained=None in Python, --pretrained random on the "
                "command line)."
            )
        try:
            return open_clip.create_model(
                model_name, pretrained=str(path), device=device, require_pretrained=True, **model_kwargs
            )
        except Exception as error:  # torch.load and OpenCLIP raise many types on a damaged or foreign file
            raise ValueError(
                f"Checkpoint {str(path)!r} could not be loaded into {model_name} ({type(error).__name__}: "
                f"{str(error)[:300]}). Pass an OpenCLIP checkpoint of this model architecture."
            ) from error

    if not model_name.startswith(("hf-hub:", "local-dir:")):
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained not in tags:
            hint = " For random weights pass pretrained=None." if pretrained == "random" else ""
            raise ValueError(
                f"Unknown pretrained tag {pretrained!r} for {model_name}. Known tags: {tags or 'none'}. "
                f"A local checkpoint file is also accepted.{hint}"
            )
    try:
        return open_clip.create_model(
            model_name,
            pretrained=pretrained,
            device=device,
            cache_dir=cache_dir,
            require_pretrained=True,
            **model_kwargs,
        )
    except Exception as error:  # download failures surface as many exception types
        raise PretrainedWeightsUnavailableError(
            f"The pretrained weights {model_name} / {pretrained} could not be loaded: they are not in the "
            f"local cache and could not be downloaded ({type(error).__name__}: {str(error)[:300]})."
        ) from error


def resolved_pretrained(pretrained: str | os.PathLike | None) -> str | None:
    """Return the tag as given, or the absolute path of a checkpoint, for recording in a config."""
    if pretrained is None:
        return None
    pretrained = os.fspath(pretrained)
    return str(Path(pretrained).expanduser().resolve()) if is_checkpoint_path(pretrained) else pretrained
