"""HookedViT: an OpenCLIP vision transformer on TransformerLens hook points."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float
from open_clip.transformer import VisionTransformer
from torch import Tensor, nn
from transformer_lens import ActivationCache, HookedRootModule
from transformer_lens.hook_points import HookPoint

from hooked_clip.components import Embed, LayerNorm, TransformerBlock
from hooked_clip.config import HookedViTConfig
from hooked_clip.convert import convert_open_clip_vision_weights
from hooked_clip.inputs import validate_hook_names, validate_images
from hooked_clip.loading import create_open_clip_model, resolved_pretrained

logger = logging.getLogger(__name__)


def vision_tower(module: nn.Module) -> nn.Module:
    """Return the vision tower of an OpenCLIP `CLIP`/`CustomTextCLIP`, or `module` itself."""
    visual = getattr(module, "visual", None)
    return visual if isinstance(visual, nn.Module) else module


class HookedViT(HookedRootModule):
    """An OpenCLIP `VisionTransformer` whose activations are TransformerLens hook points.

    `forward(images)` returns exactly what OpenCLIP's `encode_image(images)` returns (not
    normalised), `[batch, d_embed]`. Hook points, batch first:

    - `embed.hook_patch_embed` `[batch, n_patches, d_model]`, `embed.hook_pos_embed`
      `[batch, pos, d_model]`; position 0 is the class token, then the patches row by row;
    - `ln_pre.hook_scale` `[batch, pos, 1]`, `ln_pre.hook_normalized`;
    - `hook_embed` `[batch, pos, d_model]`: the residual stream entering block 0 (after
      `ln_pre`), so that `ActivationCache.decompose_resid()` sums to the final residual stream;
    - per block `l`: `blocks.{l}.hook_resid_pre/mid/post`, `blocks.{l}.ln1/ln2.hook_scale/
      hook_normalized`, `blocks.{l}.attn.hook_q/k/v/z` `[batch, pos, head, d_head]`,
      `blocks.{l}.attn.hook_attn_scores/hook_pattern` `[batch, head, query_pos, key_pos]`,
      `blocks.{l}.attn.hook_result` `[batch, pos, head, d_model]`, `blocks.{l}.hook_attn_out`,
      `blocks.{l}.mlp.hook_pre/hook_post` `[batch, pos, d_mlp]`, `blocks.{l}.hook_mlp_out`;
    - `ln_final.hook_scale/hook_normalized` (OpenCLIP's `ln_post`), `[batch, pos, 1]` and
      `[batch, pos, d_model]`, or `[batch, 1]` and `[batch, d_model]` for towers with
      `final_ln_after_pool`; `hook_pooled` `[batch, d_model]` (the class token with
      `pool_type='tok'`, the mean of the patch tokens with `'avg'`) and `hook_image_embed`
      `[batch, d_embed]`.

    A hook that returns a tensor replaces the activation at every hook point.
    """

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.ln_pre = LayerNorm(cfg.d_model, cfg.eps, cfg.dtype) if cfg.ln_pre else nn.Identity()
        self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList([TransformerBlock(cfg, layer) for layer in range(cfg.n_layers)])
        self.ln_final = LayerNorm(cfg.d_model, cfg.eps, cfg.dtype)
        self.hook_pooled = HookPoint()
        self.W_proj = nn.Parameter(torch.empty(cfg.d_model, cfg.d_embed, dtype=cfg.dtype))
        self.hook_image_embed = HookPoint()
        self.setup()
        self.eval()

    # -- forward -----------------------------------------------------------------------------

    def forward(self, images: Float[Tensor, "batch 3 height width"]) -> Float[Tensor, "batch d_embed"]:
        """Encode images into the joint image-text space, as OpenCLIP's `encode_image` does.

        Raises:
            TypeError, ValueError: for input that is not a finite float batch
                `[batch, 3, height, width]` at the model's image size.
        """
        validate_images(images, self.cfg.image_size)
        images = images.to(device=self.W_proj.device, dtype=self.W_proj.dtype)

        resid = self.hook_embed(self.ln_pre(self.embed(images)))
        for block in self.blocks:
            resid = block(resid)

        if self.cfg.final_ln_after_pool:
            pooled = self.ln_final(self._pool(resid))
        else:
            pooled = self._pool(self.ln_final(resid))
        pooled = self.hook_pooled(pooled)
        return self.hook_image_embed(pooled @ self.W_proj)

    def _pool(self, tokens: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch d_model"]:
        if self.cfg.pool_type == "avg":
            return tokens[:, 1:].mean(dim=1)
        # A copy, so that caching hook_pooled does not keep every token's ln_final output alive.
        return tokens[:, 0].clone()

    def pool_weights(self, batch: int = 1) -> Float[Tensor, "batch pos"]:
        """Return the weight of each position in the pooled vector: one-hot for 'tok', 1/n_patches for 'avg'."""
        weights = torch.zeros(batch, self.cfg.n_ctx, device=self.W_proj.device, dtype=self.W_proj.dtype)
        if self.cfg.pool_type == "avg":
            weights[:, 1:] = 1.0 / self.cfg.n_patches
        else:
            weights[:, 0] = 1.0
        return weights

    def run_with_cache(
        self,
        *model_args: Any,
        names_filter: str | Sequence[str] | Callable[[str], bool] | None = None,
        **kwargs: Any,
    ) -> tuple[Tensor, ActivationCache]:
        """Run the model and cache activations; return `(image_embed, ActivationCache)`.

        Takes the arguments of `HookedRootModule.run_with_cache` (`names_filter`, `device`,
        `remove_batch_dim`, `incl_bwd`, ...). Hook names given as strings are checked.

        Raises:
            KeyError: a hook name in `names_filter` that the model does not have.
        """
        validate_hook_names(names_filter, self.hook_dict)
        has_batch_dim = not kwargs.get("remove_batch_dim", False)
        output, cache_dict = super().run_with_cache(*model_args, names_filter=names_filter, **kwargs)
        return output, ActivationCache(cache_dict, self, has_batch_dim=has_batch_dim)

    def run_with_hooks(self, *model_args: Any, fwd_hooks=(), bwd_hooks=(), **kwargs: Any) -> Any:
        """Run the model with temporary hooks `[(name or filter, hook_fn), ...]`.

        Raises:
            KeyError: a hook name that the model does not have.
        """
        for name, _ in list(fwd_hooks) + list(bwd_hooks):
            if isinstance(name, str):
                validate_hook_names(name, self.hook_dict)
        return super().run_with_hooks(*model_args, fwd_hooks=fwd_hooks, bwd_hooks=bwd_hooks, **kwargs)

    def weights_fingerprint(self) -> str:
        """Return a SHA-256 digest (16 hex digits) of every parameter, to tell weights apart in saved results."""
        digest = hashlib.sha256()
        for name, parameter in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(parameter.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:16]

    def train(self, mode: bool = True) -> "HookedViT":
        # NOTE: HookedViT has no dropout or patch dropout, so train mode changes no computation.
        return super().train(mode)

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def from_open_clip(
        cls,
        model_name: str,
        pretrained: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        cache_dir: str | None = None,
        image_size: int | tuple[int, int] | None = None,
    ) -> "HookedViT":
        """Build an OpenCLIP model by name and convert its vision tower.

        `pretrained` is None (random weights, with a logged warning), an OpenCLIP pretrained tag
        such as `"laion2b_s34b_b88k"`, or the path of a checkpoint file. `image_size` opts in to
        another input size (see `from_open_clip_model`).

        Raises:
            ValueError: unknown model name (close names listed) or tag.
            FileNotFoundError: a checkpoint path that does not exist.
            PretrainedWeightsUnavailableError: weights that cannot be downloaded here.
            NotImplementedError: a vision tower that HookedViT does not support.
        """
        clip = create_open_clip_model(model_name, pretrained, cache_dir=cache_dir)
        model = cls.from_open_clip_model(clip, device=device, dtype=dtype, image_size=image_size)
        model.cfg.model_name = model_name
        model.cfg.pretrained = resolved_pretrained(pretrained)
        return model

    @classmethod
    def from_open_clip_model(
        cls,
        module: nn.Module,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        image_size: int | tuple[int, int] | None = None,
    ) -> "HookedViT":
        """Convert an already built OpenCLIP `CLIP` or `VisionTransformer` (left unchanged).

        `image_size` (pixels, an int or `(height, width)`) resizes the patch grid of the positional
        embedding with bicubic interpolation, as OpenCLIP does when it loads a checkpoint into a
        model of another size. The class-token position is kept as is. Without it, input of any
        size other than the trained one is rejected.

        Raises:
            NotImplementedError: a vision tower that HookedViT does not support.
            WeightConversionError: a state-dict key without a mapping, or a parameter without a source.
        """
        visual = vision_tower(module)
        if not isinstance(visual, VisionTransformer):
            raise NotImplementedError(
                f"HookedViT supports OpenCLIP's VisionTransformer only; got {type(visual).__name__} "
                "(timm towers and ModifiedResNet have no HookedViT conversion)."
            )
        cfg = HookedViTConfig.from_open_clip(visual)
        _check_layer_norm_eps(visual, cfg.eps)

        state_dict = convert_open_clip_vision_weights(visual.state_dict(), cfg)
        if image_size is not None:
            state_dict["embed.W_pos"] = _resize_positional_embedding(state_dict["embed.W_pos"], cfg, image_size)
        cfg.device = str(device or cfg.device)
        cfg.dtype = dtype or cfg.dtype

        with torch.device("meta"):
            model = cls(cfg)
        model.load_state_dict(state_dict, strict=True, assign=True)
        return model.to(device=cfg.device, dtype=cfg.dtype).eval()


def _resize_positional_embedding(W_pos: Tensor, cfg: HookedViTConfig, image_size: int | tuple[int, int]) -> Tensor:
    """Interpolate the patch part of `W_pos` to the grid of `image_size` and update `cfg.image_size`."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(int(v) for v in image_size)
    if len(size) != 2 or min(size) <= 0 or size[0] % cfg.patch_size[0] or size[1] % cfg.patch_size[1]:
        raise ValueError(
            f"image_size={image_size} is invalid; expected positive (height, width) multiples of the "
            f"patch size {cfg.patch_size}."
        )
    old_grid = cfg.grid_size
    cfg.image_size = size
    if cfg.grid_size == old_grid:
        return W_pos

    class_position, patches = W_pos[:1], W_pos[1:]
    grid = einops.rearrange(patches, "(rows cols) d -> 1 d rows cols", rows=old_grid[0], cols=old_grid[1])
    grid = F.interpolate(grid.float(), size=cfg.grid_size, mode="bicubic", antialias=True, align_corners=False)
    patches = einops.rearrange(grid, "1 d rows cols -> (rows cols) d").to(W_pos.dtype)
    return torch.cat([class_position, patches])


def _check_layer_norm_eps(visual: VisionTransformer, eps: float) -> None:
    for name, module in visual.named_modules():
        if isinstance(module, nn.LayerNorm) and module.eps != eps:
            raise NotImplementedError(
                f"LayerNorm {name!r} has eps={module.eps} but the first block uses eps={eps}; "
                "HookedViT needs one eps for every LayerNorm."
            )
