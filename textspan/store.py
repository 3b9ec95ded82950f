"""Decompose a folder of images into chunk files on disk, resumably, and read them back.

A job writes `manifest.json` (model, options, image list) and one `chunk-NNNNN.pt` per chunk of
images, each through a temporary file. An interrupted job loses at most the chunk in progress,
and a rerun with the same arguments continues where it stopped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from tqdm.auto import tqdm

from hooked_clip import HookedViT
from textspan._io import atomic_torch_save, atomic_write_text
from textspan.decomposition import MeanAndBias, decompose, normalise_layers
from textspan.images import load_images

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STORE_VERSION = 1


@dataclass
class StoredTerms:
    """Direct effects of a whole image set, as read back from a store folder.

    `heads` holds only the stored `layers`; `attention` and `mlps` hold every layer.
    """

    images: list[str]
    layers: list[int]
    embed: Float[Tensor, "n_images d_embed"]
    heads: Float[Tensor, "n_images stored_layer head d_embed"]
    attention: Float[Tensor, "n_images layer d_embed"]
    mlps: Float[Tensor, "n_images layer d_embed"]
    ln_bias: Float[Tensor, "n_images d_embed"]
    manifest: dict

    def total(self) -> Float[Tensor, "n_images d_embed"]:
        """Return the image embeddings: the sum of every stored term."""
        return self.embed + self.attention.sum(dim=1) + self.mlps.sum(dim=1) + self.ln_bias


def decompose_folder(
    model: HookedViT,
    image_paths: Sequence[Path],
    preprocess: Callable[[Image.Image], Tensor],
    out_dir: str | Path,
    layers: Sequence[int] = (-4, -3, -2, -1),
    batch_size: int = 32,
    chunk_size: int = 512,
    mean_and_bias: MeanAndBias = "per_term",
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Path:
    """Decompose every image into `out_dir`, skipping the chunks that an earlier run finished.

    Raises:
        ValueError: `out_dir` contains a job with other arguments or images, or sizes are not positive.
        FileNotFoundError: an image path that does not exist.
    """
    if batch_size <= 0 or chunk_size <= 0:
        raise ValueError(f"batch_size={batch_size} and chunk_size={chunk_size} must be positive.")
    paths = [Path(path) for path in image_paths]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) do not exist, for example {missing[:3]}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    _check_readable(paths)

    manifest = {
        "version": STORE_VERSION,
        "model": model.cfg.model_name,
        "pretrained": model.cfg.pretrained,
        "weights": model.weights_fingerprint(),
        "layers": normalise_layers(layers, model.cfg.n_layers),
        "mean_and_bias": mean_and_bias,
        "chunk_size": chunk_size,
        "images": [str(path) for path in paths],
    }
    _write_or_check_manifest(out_dir, manifest)

    starts = range(0, len(paths), chunk_size)
    for chunk_index, start in enumerate(tqdm(starts, desc="chunks", disable=not progress)):
        target = out_dir / f"chunk-{chunk_index:05d}.pt"
        if target.is_file():
            continue
        chunk_paths = paths[start : start + chunk_size]
        terms = _decompose_chunk(model, chunk_paths, preprocess, manifest, batch_size, device)
        atomic_torch_save(terms, target)
        logger.info("Wrote %s (%d images)", target, len(chunk_paths))
    return out_dir


def load_store(out_dir: str | Path) -> StoredTerms:
    """Read every chunk of a finished store folder, in image order.

    Raises:
        FileNotFoundError: no manifest, or a chunk missing (the job has not finished: rerun it).
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{str(out_dir)!r} has no {MANIFEST}; it is not a folder written by decompose_folder.")
    manifest = json.loads(manifest_path.read_text())
    n_chunks = -(-len(manifest["images"]) // manifest["chunk_size"])
    chunks = []
    for chunk_index in range(n_chunks):
        path = out_dir / f"chunk-{chunk_index:05d}.pt"
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is missing: the job in {str(out_dir)!r} has not finished. Rerun it with the same arguments."
            )
        chunks.append(torch.load(path, weights_only=True))

    def stack(name: str) -> Tensor:
        return torch.cat([chunk[name] for chunk in chunks])

    return StoredTerms(
        images=manifest["images"],
        layers=manifest["layers"],
        embed=stack("embed"),
        heads=stack("heads"),
        attention=stack("attention"),
        mlps=stack("mlps"),
        ln_bias=stack("ln_bias"),
        manifest=manifest,
    )


def _decompose_chunk(model, chunk_paths, preprocess, manifest, batch_size, device) -> dict[str, Tensor]:
    parts: dict[str, list[Tensor]] = {name: [] for name in ("embed", "heads", "attention", "mlps", "ln_bias")}
    for start in range(0, len(chunk_paths), batch_size):
        images, _ = load_images(chunk_paths[start : start + batch_size], preprocess)
        decomposition = decompose(model, images.to(device), mean_and_bias=manifest["mean_and_bias"])
        parts["embed"].append(decomposition.embed.cpu())
        parts["heads"].append(decomposition.heads[:, manifest["layers"]].cpu())
        parts["attention"].append(decomposition.attention_layers().cpu())
        parts["mlps"].append(decomposition.mlps.cpu())
        parts["ln_bias"].append(decomposition.ln_bias.cpu())
    return {name: torch.cat(tensors) for name, tensors in parts.items()}


def _check_readable(paths: Sequence[Path]) -> None:
    """Raise ValueError naming every file that Pillow cannot read, before any output is written."""
    unreadable = []
    for path in tqdm(paths, desc="checking images", disable=len(paths) < 1000):
        try:
            with Image.open(path) as picture:
                picture.verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            unreadable.append(f"{path} ({type(error).__name__})")
    if unreadable:
        raise ValueError(
            f"{len(unreadable)} file(s) cannot be read as images: {unreadable[:5]}. Remove or replace them "
            "before starting the job."
        )


def _write_or_check_manifest(out_dir: Path, manifest: dict) -> None:
    path = out_dir / MANIFEST
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing != manifest:
            differing = sorted(key for key in manifest if existing.get(key) != manifest[key])
            shown = {key: (existing.get(key), manifest[key]) for key in differing if key != "images"}
            raise ValueError(
                f"{str(out_dir)!r} already contains a job with other {differing} (existing, requested: {shown}). "
                "Use another output folder, or rerun with the arguments of that job to resume it."
            )
        logger.info("Resuming the job in %s", out_dir)
        return
    atomic_write_text(path, json.dumps(manifest, indent=2))
