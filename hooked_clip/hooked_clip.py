"""HookedCLIP: a HookedViT with OpenCLIP's text tower, tokenizer, preprocessing and logit scale."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import open_clip
from open_clip.transform import PreprocessCfg, image_transform_v2
import torch
import torch.nn.functional as F
from jaxtyping import Float
from open_clip.zero_shot_metadata import (
    IMAGENET_CLASSNAMES,
    OPENAI_IMAGENET_TEMPLATES,
    SIMPLE_IMAGENET_TEMPLATES,
)
from torch import Tensor, nn
from tqdm.auto import tqdm

from hooked_clip.hooked_vit import HookedViT, vision_tower
from hooked_clip.loading import create_open_clip_model, resolved_pretrained, validate_model_name

logger = logging.getLogger(__name__)

Template = str | Callable[[str], str]

CLASSNAMES: dict[str, tuple[str, ...]] = {"imagenet": tuple(IMAGENET_CLASSNAMES)}
TEMPLATES: dict[str, tuple[Template, ...]] = {
    "openai_imagenet": tuple(OPENAI_IMAGENET_TEMPLATES),
    "simple_imagenet": tuple(SIMPLE_IMAGENET_TEMPLATES),
}

_TEXT_ATTRIBUTES = (
    "token_embedding",
    "positional_embedding",
    "transformer",
    "ln_final",
    "text_projection",
    "attn_mask",
    "text_pool_type",
    "text_eos_id",
)


class TextTower(nn.Module):
    """The text encoder of an OpenCLIP model, without its vision tower.

    Shares the modules of the source model (no copy) and encodes with OpenCLIP's own
    `encode_text`, so text embeddings equal OpenCLIP's exactly.
    """

    def __init__(self, clip: nn.Module):
        super().__init__()
        self._custom_text = isinstance(getattr(clip, "text", None), nn.Module)
        if self._custom_text:
            self.text = clip.text
            return
        for name in _TEXT_ATTRIBUTES:
            if not hasattr(clip, name):
                continue
            value = getattr(clip, name)
            if isinstance(value, (nn.Module, nn.Parameter)):
                setattr(self, name, value)
            elif isinstance(value, Tensor):
                self.register_buffer(name, value, persistent=False)
            else:
                object.__setattr__(self, name, value)

    def forward(self, tokens: Tensor) -> Float[Tensor, "batch d_embed"]:
        if self._custom_text:
            return self.text(tokens)
        if not self._is_causal_argmax():
            return open_clip.model.CLIP.encode_text(self, tokens)
        return self._encode_trimmed(tokens)

    def _is_causal_argmax(self) -> bool:
        mask = getattr(self, "attn_mask", None)
        if getattr(self, "text_pool_type", None) != "argmax" or not isinstance(mask, Tensor) or mask.ndim != 2:
            return False
        above_diagonal = torch.ones_like(mask, dtype=torch.bool).triu(1)
        return bool(torch.isneginf(mask[above_diagonal]).all()) and not bool(torch.isinf(mask[~above_diagonal]).any())

    def _encode_trimmed(self, tokens: Tensor) -> Float[Tensor, "batch d_embed"]:
        """Encode as OpenCLIP's `CLIP.encode_text` does, on the positions up to the longest text.

        With a causal mask and pooling at the end-of-text token (the largest token id), the
        padding after it never reaches the pooled vector, so dropping it leaves the embedding
        unchanged and saves most of the work for short descriptions.
        """
        end_of_text = tokens.argmax(dim=-1)
        length = int(end_of_text.max()) + 1
        cast_dtype = self.transformer.get_cast_dtype()

        x = self.token_embedding(tokens[:, :length]).to(cast_dtype)
        x = x + self.positional_embedding[:length].to(cast_dtype)
        x = self.transformer(x, attn_mask=self.attn_mask[:length, :length])
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), end_of_text]
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x if self.text_projection is None else x @ self.text_projection


class HookedCLIP(nn.Module):
    """A CLIP model whose image encoder is a `HookedViT`.

    Attributes: `visual` (the `HookedViT`), `text` (`TextTower`), `tokenizer`, `preprocess`
    (the evaluation image transform of OpenCLIP) and `logit_scale` (log of the temperature).
    """

    def __init__(
        self,
        visual: HookedViT,
        text: TextTower,
        tokenizer: Callable[..., Tensor],
        preprocess: Callable,
        logit_scale: Tensor,
        preprocess_cfg: PreprocessCfg | None = None,
    ):
        super().__init__()
        self.visual = visual
        self.text = text
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.logit_scale = nn.Parameter(logit_scale.detach().clone(), requires_grad=False)
        self.preprocess_cfg = preprocess_cfg
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.visual.W_proj.device

    @classmethod
    def from_open_clip(
        cls,
        model_name: str,
        pretrained: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        cache_dir: str | None = None,
        image_size: int | tuple[int, int] | None = None,
    ) -> "HookedCLIP":
        """Build an OpenCLIP model by name (see `HookedViT.from_open_clip` for `pretrained` and `image_size`).

        Raises:
            ValueError, FileNotFoundError, PretrainedWeightsUnavailableError, NotImplementedError:
                as `HookedViT.from_open_clip`.
        """
        validate_model_name(model_name)
        clip = create_open_clip_model(model_name, pretrained, cache_dir=cache_dir)
        tokenizer = open_clip.get_tokenizer(model_name)
        model = cls.from_open_clip_model(clip, tokenizer, device=device, dtype=dtype, image_size=image_size)
        model.visual.cfg.model_name = model_name
        model.visual.cfg.pretrained = resolved_pretrained(pretrained)
        return model

    @classmethod
    def from_open_clip_model(
        cls,
        clip: nn.Module,
        tokenizer: Callable[..., Tensor] | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        image_size: int | tuple[int, int] | None = None,
    ) -> "HookedCLIP":
        """Wrap an already built OpenCLIP `CLIP` or `CustomTextCLIP`.

        The text tower shares the modules of `clip` and is moved to `device` and `dtype` too.
        Without `tokenizer`, OpenCLIP's default BPE tokenizer of OpenAI's CLIP is used.

        Raises:
            TypeError: `clip` has no text tower.
        """
        if not hasattr(clip, "encode_text") or not hasattr(clip, "logit_scale"):
            raise TypeError(
                f"{type(clip).__name__} is not an OpenCLIP CLIP model with a text tower; "
                "use HookedViT.from_open_clip_model for a vision tower alone."
            )
        visual = HookedViT.from_open_clip_model(clip, device=device, dtype=dtype, image_size=image_size)
        text = TextTower(clip).to(device=visual.cfg.device, dtype=visual.cfg.dtype)
        preprocess_settings = dict(getattr(vision_tower(clip), "preprocess_cfg", None) or {})
        preprocess_settings["size"] = visual.cfg.image_size
        preprocess_cfg = PreprocessCfg(**preprocess_settings)
        preprocess = image_transform_v2(preprocess_cfg, is_train=False)
        tokenizer = tokenizer or open_clip.get_tokenizer("ViT-B-32")
        return cls(visual, text, tokenizer, preprocess, clip.logit_scale, preprocess_cfg)

    def run_with_cache(self, images: Tensor, **kwargs):
        """Run the image encoder with a cache; see `HookedViT.run_with_cache`."""
        return self.visual.run_with_cache(images, **kwargs)

    def run_with_hooks(self, images: Tensor, **kwargs):
        """Run the image encoder with temporary hooks; see `HookedViT.run_with_hooks`."""
        return self.visual.run_with_hooks(images, **kwargs)

    # -- encoders ----------------------------------------------------------------------------

    def encode_image(self, images: Float[Tensor, "batch 3 height width"], normalize: bool = False) -> Tensor:
        """Encode preprocessed images, `[batch, d_embed]`; see `HookedViT.forward`."""
        embeddings = self.visual(images)
        return F.normalize(embeddings, dim=-1) if normalize else embeddings

    @torch.no_grad()
    def encode_text(
        self, texts: Sequence[str], normalize: bool = False, batch_size: int = 256, progress: bool = False
    ) -> Float[Tensor, "n_texts d_embed"]:
        """Tokenize and encode `texts` in batches of `batch_size`, `[n_texts, d_embed]`.

        Raises:
            ValueError: an empty list, or an empty or non-string entry.
        """
        texts = validate_texts(texts)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        chunks = []
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="encoding texts", disable=not progress):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            chunks.append(self.text(tokens))
        embeddings = torch.cat(chunks).to(self.visual.cfg.dtype)
        return F.normalize(embeddings, dim=-1) if normalize else embeddings

    @torch.no_grad()
    def zero_shot_classifier(
        self,
        classnames: Sequence[str] | str,
        templates: Sequence[Template] | str,
        progress: bool = False,
    ) -> Float[Tensor, "d_embed n_classes"]:
        """Build zero-shot class directions, `[d_embed, n_classes]` as in OpenCLIP.

        Each column is the mean of the normalised text embeddings of the class name in every
        template, normalised again. `classnames` may be `"imagenet"` and `templates`
        `"openai_imagenet"` or `"simple_imagenet"` (OpenCLIP's lists). A template is a string
        with one `{}` placeholder or a function of the class name.

        Raises:
            KeyError: an unknown list name. ValueError: empty lists or a template without `{}`.
        """
        classnames = _resolve_named(classnames, CLASSNAMES, "classnames")
        templates = _resolve_named(templates, TEMPLATES, "templates")
        classnames = validate_texts(classnames, what="classnames")
        if not templates:
            raise ValueError("templates is empty; pass at least one template such as 'a photo of a {}.'.")
        for template in templates:
            if isinstance(template, str) and "{}" not in template:
                raise ValueError(f"Template {template!r} has no '{{}}' placeholder for the class name.")

        columns = []
        for classname in tqdm(classnames, desc="zero-shot classifier", disable=not progress):
            texts = [t(classname) if callable(t) else t.format(classname) for t in templates]
            embeddings = self.encode_text(texts, normalize=True)
            columns.append(F.normalize(embeddings.mean(dim=0), dim=-1))
        return torch.stack(columns, dim=1)


def validate_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    """Return `texts` as a list, raising ValueError for an empty list or an empty or non-string entry."""
    if isinstance(texts, str):
        raise ValueError(f"{what} must be a list of strings, got a single string {texts!r}; wrap it in a list.")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{what} is empty; pass at least one string.")
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{what}[{index}] = {text!r} is not a non-empty string.")
    return texts


def _resolve_named(value, table: dict, what: str):
    if isinstance(value, str):
        if value not in table:
            raise KeyError(f"Unknown {what} list {value!r}; known lists: {sorted(table)}.")
        return list(table[value])
    return list(value)
