"""Shared fixtures: small OpenCLIP models with random weights and non-trivial LayerNorms."""

from __future__ import annotations

import open_clip
import pytest
import torch
from torch import nn


def randomise_norms(module: nn.Module, seed: int = 0) -> nn.Module:
    """Randomise LayerNorm and LayerScale weights and every bias, so no identity or zero hides a bug."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for child in module.modules():
            if isinstance(child, nn.LayerNorm):
                child.weight.copy_(1 + 0.3 * torch.randn(child.weight.shape, generator=generator))
                child.bias.copy_(0.3 * torch.randn(child.bias.shape, generator=generator))
            elif isinstance(child, (nn.Linear, nn.MultiheadAttention)):
                # OpenCLIP starts these biases at zero, which would hide bias-handling bugs.
                for name, parameter in child.named_parameters(recurse=False):
                    if "bias" in name and parameter is not None:
                        parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
            gamma = getattr(child, "gamma", None)
            if isinstance(gamma, nn.Parameter):
                gamma.copy_(0.5 + 0.2 * torch.randn(gamma.shape, generator=generator))
    return module.eval()


def tiny_clip(seed: int = 0, **vision_overrides) -> nn.Module:
    """A CLIP with a 3-layer, 64-wide vision tower on 32x32 images (4x4 patches of 8 pixels)."""
    torch.manual_seed(seed)
    vision_cfg = dict(layers=3, width=64, head_width=16, patch_size=8, image_size=32, mlp_ratio=2.0)
    vision_cfg.update(vision_overrides)
    text_cfg = dict(layers=2, width=32, heads=2, context_length=77, vocab_size=49408)
    model = open_clip.CLIP(embed_dim=24, vision_cfg=vision_cfg, text_cfg=text_cfg)
    return randomise_norms(model, seed)


@pytest.fixture
def tiny_model() -> nn.Module:
    return tiny_clip()


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Return max |actual - expected| divided by max |expected|."""
    return float((actual - expected).detach().abs().max() / expected.detach().abs().max())


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Keep text-embedding caches of every test out of the user's home folder."""
    monkeypatch.setenv("HOOKED_CLIP_CACHE", str(tmp_path_factory.mktemp("cache")))
