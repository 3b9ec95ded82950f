"""TransformerLens hook points on OpenCLIP vision transformers."""

from hooked_clip.config import HookedViTConfig
from hooked_clip.convert import WeightConversionError, convert_open_clip_vision_weights
from hooked_clip.hooked_clip import HookedCLIP
from hooked_clip.hooked_vit import HookedViT
from hooked_clip.loading import PretrainedWeightsUnavailableError, create_open_clip_model

__all__ = [
    "HookedCLIP",
    "HookedViT",
    "HookedViTConfig",
    "PretrainedWeightsUnavailableError",
    "WeightConversionError",
    "convert_open_clip_vision_weights",
    "create_open_clip_model",
]
