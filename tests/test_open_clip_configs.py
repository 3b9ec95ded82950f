"""Every OpenCLIP config whose vision tower is OpenCLIP's own VisionTransformer, shrunk to 2 layers.

Each config keeps its pooling, LayerNorm placement, activation, LayerScale, image and patch size;
only depth and width shrink, so all of them run in seconds.
"""

from __future__ import annotations

import open_clip
import pytest
import torch
from conftest import randomise_norms, relative_error
from open_clip.model import _build_vision_tower

from hooked_clip import HookedViT
from textspan.decomposition import decompose


def vision_configs() -> dict[str, dict]:
    configs = {}
    for name in open_clip.list_models():
        model_cfg = open_clip.get_model_config(name)
        vision_cfg = dict(model_cfg["vision_cfg"])
        if vision_cfg.get("timm_model_name") or isinstance(vision_cfg.get("layers"), (list, tuple)):
            continue
        vision_cfg.update(layers=2, width=64, head_width=16)
        configs[name] = {"vision_cfg": vision_cfg, "quick_gelu": model_cfg.get("quick_gelu", False)}
    return configs


CONFIGS = vision_configs()
ATTENTIONAL_POOLING = sorted(name for name, cfg in CONFIGS.items() if cfg["vision_cfg"].get("attentional_pool"))
SUPPORTED = sorted(name for name in CONFIGS if name not in ATTENTIONAL_POOLING)


def build_tower(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = CONFIGS[name]
    tower = _build_vision_tower(32, cfg["vision_cfg"], quick_gelu=cfg["quick_gelu"])
    return randomise_norms(tower).double()


def test_config_count():
    # OpenCLIP 3.3 lists 56 configs built on its own VisionTransformer; 2 of them (CoCa) pool with attention.
    assert len(SUPPORTED) >= 50
    assert len(ATTENTIONAL_POOLING) >= 1


@pytest.mark.parametrize("name", SUPPORTED)
def test_config_parity_and_decomposition(name):
    tower = build_tower(name)
    model = HookedViT.from_open_clip_model(tower)
    images = torch.randn(2, 3, *model.cfg.image_size, dtype=torch.float64)
    with torch.no_grad():
        expected = tower(images)
    if isinstance(expected, tuple):  # CoCa towers also return their tokens
        expected = expected[0]
    assert relative_error(model(images), expected) < 1e-12
    assert relative_error(decompose(model, images).total(), expected) < 1e-12


@pytest.mark.parametrize("name", ATTENTIONAL_POOLING)
def test_attentional_pooling_raises(name):
    with pytest.raises(NotImplementedError, match="attentional pooler"):
        HookedViT.from_open_clip_model(build_tower(name))
