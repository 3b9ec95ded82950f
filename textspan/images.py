"""Loading photographs from a folder into a preprocessed batch."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def shipped_photos_dir() -> Path:
    """Return the folder of photographs that ship with the package (see its README for licences)."""
    return Path(str(resources.files("textspan") / "data" / "photos"))


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Return the image files in `folder` (and its subfolders with `recursive`), sorted by path.

    Raises:
        FileNotFoundError: `folder` does not exist or is not a folder.
        ValueError: `folder` has no file with a known image suffix.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Image folder {str(folder)!r} does not exist or is not a folder.")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    paths = sorted(p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"Image folder {str(folder)!r} has no images with suffixes {IMAGE_SUFFIXES}.")
    return paths


def load_images(paths: list[Path], preprocess: Callable[[Image.Image], Tensor]) -> tuple[Tensor, list[Image.Image]]:
    """Open each image as RGB and return `(preprocessed batch, RGB images)`.

    Raises:
        ValueError: a file that Pillow cannot read as an image, named in the message.
    """
    pictures = []
    for path in paths:
        try:
            with Image.open(path) as picture:
                pictures.append(picture.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"Cannot read {str(path)!r} as an image ({error}); remove or replace that file.") from error
    return torch.stack([preprocess(picture) for picture in pictures]), pictures


def denormalize(image: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Undo the normalisation of a preprocessed `[3, height, width]` image; return `[height, width, 3]` in 0..1."""
    mean_tensor = torch.tensor(mean, dtype=image.dtype).view(3, 1, 1)
    std_tensor = torch.tensor(std, dtype=image.dtype).view(3, 1, 1)
    pixels = (image.cpu() * std_tensor + mean_tensor).clamp(0, 1)
    return pixels.permute(1, 2, 0).numpy()
