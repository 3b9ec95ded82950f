"""Zero-shot segmentation from heatmaps: binarisation, metrics, mask geometry and data loaders.

The protocol is that of Chefer, Gur and Wolf, "Transformer Interpretability Beyond Attention
Visualization" (CVPR 2021), on the ImageNet-segmentation masks of Guillaumin, Küttel and Ferrari (2014).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import torch
import torchvision.transforms.functional as TF
from jaxtyping import Bool, Float
from open_clip.transform import PreprocessCfg, ResizeKeepRatio, center_crop_or_pad
from PIL import Image, UnidentifiedImageError
from sklearn.metrics import average_precision_score
from torch import Tensor
from torchvision.transforms import InterpolationMode

from textspan.heatmaps import upsample
from textspan.images import list_images

logger = logging.getLogger(__name__)

Threshold = Literal["mean"] | float | Callable[[Tensor], float | Tensor]
"""`"mean"`, a float in [0, 1], or a callable from one normalised heatmap `[height, width]` to a float."""

ResizeMode = Literal["shortest", "longest", "squash"]

IMAGENET_SEGMENTATION_DATASETS = ("value/img", "value/gt")


# -- binarisation ----------------------------------------------------------------------------


def normalize_heatmaps(
    heatmaps: Float[Tensor, "batch height width"], clip_negative: bool = False
) -> Float[Tensor, "batch height width"]:
    """Min-max normalise each heatmap to [0, 1], in float64.

    A constant heatmap becomes all zeros, where Chefer et al.'s evaluation divides by zero and
    then replaces the NaN values with zeros. With `clip_negative`, negative scores are set to 0
    first, as Gandelsman et al.'s evaluation of their own heatmaps does.

    Raises:
        TypeError: `heatmaps` is not a real-valued tensor.
        ValueError: not `[batch, height, width]`, empty, or with NaN or infinite values.
    """
    heatmaps = _check_heatmaps(heatmaps)
    if clip_negative:
        heatmaps = heatmaps.clamp(min=0)

    low = heatmaps.amin(dim=(1, 2), keepdim=True)
    span = heatmaps.amax(dim=(1, 2), keepdim=True) - low
    constant = span == 0
    normalized = (heatmaps - low) / torch.where(constant, torch.ones_like(span), span)
    return torch.where(constant, torch.zeros_like(normalized), normalized)


def binarize(
    heatmaps: Float[Tensor, "batch height width"],
    threshold: Threshold = "mean",
    clip_negative: bool = False,
) -> Bool[Tensor, "batch height width"]:
    """Turn each heatmap into a foreground mask: normalised score strictly above the image's threshold.

    Each heatmap is first min-max normalised to [0, 1] (see `normalize_heatmaps`). The default
    threshold, `"mean"`, is the mean of that normalised heatmap, the rule of Chefer et al.'s
    ImageNet-segmentation evaluation that Gandelsman et al. (2024) follow. A float in [0, 1] is a
    fixed threshold on the normalised scale. A callable gets one normalised heatmap
    `[height, width]` (float64) and returns its threshold. A constant heatmap is background
    everywhere for every threshold in [0, 1].

    Raises:
        TypeError, ValueError: as `normalize_heatmaps`; an unknown threshold name, a float
            outside [0, 1], or a callable that returns a non-finite value.
    """
    normalized = normalize_heatmaps(heatmaps, clip_negative)
    thresholds = _thresholds(normalized, threshold)
    return normalized > thresholds[:, None, None]


def _check_threshold(threshold: object) -> None:
    if callable(threshold):
        return
    if isinstance(threshold, str):
        if threshold != "mean":
            raise ValueError(f"threshold={threshold!r} is not a known rule; expected 'mean', a float in [0, 1] or a callable.")
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(
            f"threshold={threshold!r} is invalid; expected 'mean', a float in [0, 1] (applied after "
            "min-max normalisation) or a callable."
        )


def _thresholds(normalized: Tensor, threshold: Threshold) -> Float[Tensor, " batch"]:
    _check_threshold(threshold)
    if isinstance(threshold, str):
        return normalized.mean(dim=(1, 2))
    if not callable(threshold):
        return torch.full(normalized.shape[:1], float(threshold), dtype=normalized.dtype, device=normalized.device)

    values = [float(threshold(image)) for image in normalized]
    if not all(math.isfinite(value) for value in values):
        raise ValueError(f"The threshold callable returned {values}; expected finite floats, one per heatmap.")
    return torch.tensor(values, dtype=normalized.dtype, device=normalized.device)


def _check_heatmaps(heatmaps: object) -> Float[Tensor, "batch height width"]:
    if not isinstance(heatmaps, Tensor) or heatmaps.dtype == torch.bool or heatmaps.is_complex():
        kind = heatmaps.dtype if isinstance(heatmaps, Tensor) else type(heatmaps).__name__
        raise TypeError(f"heatmaps must be a real-valued torch.Tensor [batch, height, width]; got {kind}.")
    if heatmaps.ndim != 3:
        raise ValueError(
            f"heatmaps have shape {tuple(heatmaps.shape)}; expected [batch, height, width]. "
            "Add a batch axis with heatmap.unsqueeze(0) for a single image."
        )
    if heatmaps.numel() == 0:
        raise ValueError(
            f"heatmaps are empty (shape {tuple(heatmaps.shape)}); expected at least one heatmap of at least one pixel."
        )
    heatmaps = heatmaps.detach().to(torch.float64)
    finite = torch.isfinite(heatmaps).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten().tolist()
        raise ValueError(f"heatmaps {bad} (batch indices) contain NaN or infinite values; fix the method that made them.")
    return heatmaps


# -- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageScores:
    """Pixel counts and average precision of one image's segmentation.

    `intersection` and `union` are `(background, foreground)` pixel counts. `average_precision`
    is the AP of Chefer et al.'s evaluation, which ranks the scores `1 - h` against the background
    pixels and `h` against the foreground pixels together, where `h` is the min-max normalised
    heatmap. `foreground_average_precision` ranks `h` against the foreground pixels alone.
    """

    correct: int
    labelled: int
    intersection: tuple[int, int]
    union: tuple[int, int]
    average_precision: float
    foreground_average_precision: float
    key: str | None = None

    @property
    def pixel_accuracy(self) -> float:
        return self.correct / self.labelled

    @classmethod
    def from_dict(cls, data: dict) -> "ImageScores":
        """Rebuild scores from `dataclasses.asdict` output (JSON turns the pairs into lists)."""
        return cls(**{**data, "intersection": tuple(data["intersection"]), "union": tuple(data["union"])})

    @property
    def iou(self) -> tuple[float, float]:
        """Intersection over union of background and foreground, 0 for a class with an empty union."""
        return tuple(_ratio(inter, union) for inter, union in zip(self.intersection, self.union))


def average_precision(scores: Float[Tensor, " n"], targets: Bool[Tensor, " n"]) -> float:
    """Compute AP = sum over distinct score thresholds of (R_n - R_(n-1)) * P_n.

    Scores that tie form one threshold, as in `sklearn.metrics.average_precision_score`, which
    computes it. Returns 0.0 when `targets` has no positive, the value that Chefer et al.'s
    NaN-to-zero replacement gives.

    Raises:
        ValueError: `scores` and `targets` of different lengths.
    """
    scores = scores.detach().reshape(-1).cpu().to(torch.float64)
    targets = targets.detach().reshape(-1).cpu().bool()
    if scores.numel() != targets.numel():
        raise ValueError(f"scores have {scores.numel()} values but targets have {targets.numel()}; expected equal lengths.")
    if not bool(targets.any()):
        return 0.0
    return float(average_precision_score(targets.numpy(), scores.numpy()))


def score_image(
    heatmap: Float[Tensor, "height width"],
    mask: Tensor | np.ndarray,
    threshold: Threshold = "mean",
    clip_negative: bool = False,
    key: str | None = None,
) -> ImageScores:
    """Binarise one pixel-level heatmap with `binarize` and score it against its 0/1 mask.

    `heatmap` and `mask` must share the model's input geometry (see `mask_to_model_geometry` and
    `heatmap_to_pixels`). Every pixel is labelled, so `labelled` is `height * width`.

    Raises:
        TypeError, ValueError: as `binarize`; a mask of another shape, or with values other than 0/1.
    """
    if not isinstance(heatmap, Tensor) or heatmap.ndim != 2:
        shape = tuple(heatmap.shape) if isinstance(heatmap, Tensor) else type(heatmap).__name__
        raise ValueError(f"heatmap has shape {shape}; expected one pixel-level heatmap [height, width].")
    normalized = normalize_heatmaps(heatmap.unsqueeze(0), clip_negative)[0]
    mask = as_binary_mask(mask, "mask").to(normalized.device)
    if mask.shape != normalized.shape:
        raise ValueError(
            f"mask has shape {tuple(mask.shape)} but the heatmap has {tuple(normalized.shape)}; bring the mask to "
            "the model's input geometry with mask_to_model_geometry and the heatmap to pixels with heatmap_to_pixels."
        )
    prediction = normalized > _thresholds(normalized[None], threshold)[0]

    intersection = (int((~prediction & ~mask).sum()), int((prediction & mask).sum()))
    union = (int((~prediction | ~mask).sum()), int((prediction | mask).sum()))

    # A constant heatmap gets score 0 on both channels, as after the NaN replacement of Chefer et al.
    constant = bool(normalized.max() == 0)
    background_scores = torch.zeros_like(normalized) if constant else 1 - normalized
    pooled_scores = torch.cat([background_scores.flatten(), normalized.flatten()])
    pooled_targets = torch.cat([(~mask).flatten(), mask.flatten()])

    return ImageScores(
        correct=int((prediction == mask).sum()),
        labelled=mask.numel(),
        intersection=intersection,
        union=union,
        average_precision=average_precision(pooled_scores, pooled_targets),
        foreground_average_precision=average_precision(normalized, mask),
        key=key,
    )


class SegmentationMetrics:
    """Accumulate pixel accuracy, mIoU and mAP over a dataset, as Chefer et al. (2021) define them.

    Pixel accuracy is correct pixels over labelled pixels, both summed over the dataset. mIoU is
    the mean over background and foreground of intersection over union, each summed over the
    dataset before dividing. mAP is the mean over images of each image's `average_precision`.
    Integer counts and an exactly rounded sum (`math.fsum`) make `compute()` independent of how the
    images are split into batches and of their order. Every value is a fraction in [0, 1].
    """

    def __init__(self, threshold: Threshold = "mean", clip_negative: bool = False):
        _check_threshold(threshold)
        self.threshold = threshold
        self.clip_negative = clip_negative
        self._per_image: list[ImageScores] = []

    def __len__(self) -> int:
        return len(self._per_image)

    @property
    def per_image(self) -> list[ImageScores]:
        """Scores of every image so far, in the order of the `update` calls."""
        return list(self._per_image)

    def add_scores(self, scores: Sequence[ImageScores]) -> None:
        """Add scores computed earlier, for example read back from disk when a run resumes."""
        self._per_image.extend(scores)

    def reset(self) -> None:
        """Forget every image scored so far."""
        self._per_image.clear()

    def update(
        self,
        heatmaps: Float[Tensor, "batch height width"],
        masks: Tensor | np.ndarray,
        keys: Sequence[str] | None = None,
    ) -> list[ImageScores]:
        """Score a batch of pixel-level heatmaps against masks `[batch, height, width]` and return the batch's scores.

        Raises:
            TypeError, ValueError: as `score_image`; masks or keys whose batch size differs from
                the heatmaps'.
        """
        _check_heatmaps(heatmaps)
        masks = as_binary_mask(masks, "masks", ndim=3)
        if masks.shape != heatmaps.shape:
            raise ValueError(
                f"masks have shape {tuple(masks.shape)} but heatmaps have {tuple(heatmaps.shape)}; expected equal "
                "shapes. Bring masks to the model's input geometry with mask_to_model_geometry and heatmaps "
                "to pixels with heatmap_to_pixels."
            )
        if keys is not None and len(keys) != heatmaps.shape[0]:
            raise ValueError(f"{len(keys)} keys for {heatmaps.shape[0]} heatmaps; pass one key per image or none.")

        scores = [
            score_image(heatmap, mask, self.threshold, self.clip_negative, None if keys is None else keys[index])
            for index, (heatmap, mask) in enumerate(zip(heatmaps, masks))
        ]
        self._per_image.extend(scores)
        return scores

    def compute(self) -> dict[str, float]:
        """Return `pixel_accuracy`, `mIoU`, `IoU_background`, `IoU_foreground`, `mAP`, `mAP_foreground` and `n_images`.

        A class whose union is empty over the whole dataset gets IoU 0, as the `eps` in the
        denominators of Chefer et al.'s evaluation gives.

        Raises:
            ValueError: no image has been scored.
        """
        if not self._per_image:
            raise ValueError("SegmentationMetrics has no images; call update(heatmaps, masks) first.")
        correct = sum(scores.correct for scores in self._per_image)
        labelled = sum(scores.labelled for scores in self._per_image)
        iou = [
            _ratio(sum(s.intersection[c] for s in self._per_image), sum(s.union[c] for s in self._per_image))
            for c in (0, 1)
        ]
        n_images = len(self._per_image)
        return {
            "pixel_accuracy": correct / labelled,
            "mIoU": (iou[0] + iou[1]) / 2,
            "IoU_background": iou[0],
            "IoU_foreground": iou[1],
            "mAP": math.fsum(s.average_precision for s in self._per_image) / n_images,
            "mAP_foreground": math.fsum(s.foreground_average_precision for s in self._per_image) / n_images,
            "n_images": n_images,
        }


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def as_binary_mask(mask: Tensor | np.ndarray, name: str = "mask", ndim: int = 2) -> Bool[Tensor, "..."]:
    """Convert a 0/1 mask (bool, integer or float tensor or numpy array) to a bool tensor.

    Raises:
        TypeError: not a tensor or numpy array.
        ValueError: `ndim` axes expected and not found, or values other than 0 and 1.
    """
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of 0/1 values; got {type(mask).__name__}.")
    if mask.ndim != ndim:
        axes = "[height, width]" if ndim == 2 else "[batch, height, width]"
        raise ValueError(f"{name} has shape {tuple(mask.shape)}; expected {ndim} axes {axes}.")
    if mask.dtype == torch.bool:
        return mask
    values = torch.unique(mask)
    if not bool(((values == 0) | (values == 1)).all()):
        shown = values[:10].tolist()
        raise ValueError(
            f"{name} has values {shown}{' ...' if values.numel() > 10 else ''}; expected 0 (background) and "
            "1 (foreground) only. Convert a 0/255 mask with mask > 0."
        )
    return mask == 1


# -- geometry --------------------------------------------------------------------------------


def mask_to_model_geometry(
    mask: Tensor | np.ndarray,
    geometry: PreprocessCfg | int | tuple[int, int],
    resize_mode: ResizeMode | None = None,
) -> Bool[Tensor, "height width"]:
    """Resize and crop a 0/1 mask `[height, width]` as OpenCLIP's evaluation transform treats the image.

    `geometry` is the model's `PreprocessCfg` (its `size` and `resize_mode` are used) or a size in
    pixels, an int or `(height, width)`. `resize_mode` overrides the mode. `"shortest"`, OpenCLIP's
    default, resizes the shorter side to the size and then crops the centre. `"longest"` resizes
    the longer side and then crops or pads with background. `"squash"` resizes to the size and
    loses the aspect ratio, as the ImageNet-segmentation script of Chefer et al. (2021) does with
    `Resize((224, 224))`. Masks are resized with nearest-neighbour interpolation, so they stay 0/1.

    Raises:
        TypeError, ValueError: as `as_binary_mask`; an invalid size or resize mode.
    """
    mask = as_binary_mask(mask, "mask")
    size, resize_mode = _target_geometry(geometry, resize_mode)
    picture = Image.fromarray(mask.cpu().numpy().astype(np.uint8))

    if resize_mode == "squash":
        picture = TF.resize(picture, list(size), interpolation=InterpolationMode.NEAREST)
    elif resize_mode == "shortest" and size[0] == size[1]:
        # OpenCLIP uses torchvision's Resize(int) here, whose rounding differs from ResizeKeepRatio.
        picture = TF.resize(picture, size[0], interpolation=InterpolationMode.NEAREST)
        picture = TF.center_crop(picture, list(size))
    else:
        longest = 1.0 if resize_mode == "longest" else 0.0
        resized = ResizeKeepRatio.get_params(picture, size, longest)
        picture = TF.resize(picture, resized, interpolation=InterpolationMode.NEAREST)
        picture = center_crop_or_pad(picture, list(size), fill=0)
    return torch.from_numpy(np.asarray(picture) == 1)


def _target_geometry(
    geometry: PreprocessCfg | int | tuple[int, int], resize_mode: ResizeMode | None
) -> tuple[tuple[int, int], ResizeMode]:
    if isinstance(geometry, PreprocessCfg):
        size, default_mode = geometry.size, geometry.resize_mode
    else:
        size, default_mode = geometry, "shortest"
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError(f"size {size!r} is invalid; expected a positive int or (height, width) in pixels.")
    resize_mode = resize_mode or default_mode
    if resize_mode not in ("shortest", "longest", "squash"):
        raise ValueError(f"resize_mode={resize_mode!r} is invalid; expected 'shortest', 'longest' or 'squash'.")
    return (int(size[0]), int(size[1])), resize_mode


def heatmap_to_pixels(
    heatmaps: Float[Tensor, "*batch rows cols"], size: int | tuple[int, int]
) -> Float[Tensor, "*batch height width"]:
    """Upsample patch-grid heatmaps bilinearly to `size` pixels (an int or `(height, width)`), in float32.

    With `size` equal to the grid times the patch size this equals Chefer et al.'s
    `interpolate(scale_factor=patch_size, mode="bilinear")` (`align_corners=False`).

    Raises:
        ValueError: heatmaps with fewer than 2 axes or no values, or an invalid size.
    """
    if not isinstance(heatmaps, Tensor) or heatmaps.ndim < 2 or heatmaps.numel() == 0:
        shape = tuple(heatmaps.shape) if isinstance(heatmaps, Tensor) else type(heatmaps).__name__
        raise ValueError(f"heatmaps have shape {shape}; expected a non-empty tensor [*batch, rows, cols].")
    size, _ = _target_geometry(size, None)
    return upsample(heatmaps.detach(), size)


# -- data ------------------------------------------------------------------------------------


class ImageNetSegmentation(Sequence):
    """The ImageNet-segmentation set of Guillaumin, Küttel and Ferrari (2014), read lazily from `gtsegs_ijcv.mat`.

    Item `i` is `(RGB PIL image, uint8 mask [height, width] of 0/1)`. The file is a MATLAB v7.3
    (HDF5) file whose cell arrays `value/img` and `value/gt` contain object references to one
    array per image. Each `value/gt` cell may contain a further 1x1 cell with the mask, the layout
    that the ImageNet-segmentation loader of Chefer et al. (2021) reads. MATLAB stores arrays column-major, so h5py exposes a MATLAB `height x width x 3` image
    as `[3, width, height]` and a mask as `[width, height]`; reversing the axes restores
    `[height, width, 3]` and `[height, width]`. The HDF5 file is opened on first access and
    reopened in each process that the dataset is pickled to (for example DataLoader workers).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ImageNet-segmentation file {str(self.path)!r} does not exist.")
        with _open_hdf5(self.path) as file:
            image_refs, mask_refs = _reference_datasets(file, self.path)
        self._length = len(image_refs)
        self._file = None
        self._refs: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple[Image.Image, np.ndarray]:
        index = _check_index(index, self._length)
        file, (image_refs, mask_refs) = self._open()

        image = np.asarray(self._dereference(file, image_refs[index], "image", index))
        if image.ndim == 3 and image.shape[0] == 3:
            image = image.transpose(2, 1, 0)
        elif image.ndim == 2:
            image = image.T
        else:
            raise ValueError(
                f"Image {index} in {str(self.path)!r} has h5py shape {image.shape}; expected [3, width, height] "
                "(MATLAB height x width x 3) or [width, height] for greyscale."
            )
        if image.dtype != np.uint8:
            raise ValueError(f"Image {index} in {str(self.path)!r} has dtype {image.dtype}; expected uint8 pixels.")

        mask = np.asarray(self._dereference(file, mask_refs[index], "mask", index)).T
        mask = as_binary_mask(mask, f"mask {index} in {str(self.path)!r}").numpy().astype(np.uint8)
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"Mask {index} in {str(self.path)!r} has shape {mask.shape} but its image has {image.shape[:2]}; "
                "expected equal height and width."
            )
        return Image.fromarray(np.ascontiguousarray(image)).convert("RGB"), mask

    def __iter__(self) -> Iterator[tuple[Image.Image, np.ndarray]]:
        for index in range(self._length):
            yield self[index]

    def close(self) -> None:
        """Close the HDF5 file, which the next item access reopens."""
        if self._file is not None:
            self._file.close()
        self._file, self._refs = None, None

    def __enter__(self) -> "ImageNetSegmentation":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_file=None, _refs=None)
        return state

    def _open(self) -> tuple[h5py.File, tuple[np.ndarray, np.ndarray]]:
        if self._file is None:
            self._file = _open_hdf5(self.path)
            self._refs = _reference_datasets(self._file, self.path)
        return self._file, self._refs

    def _dereference(self, file: h5py.File, reference: h5py.Reference, what: str, index: int) -> np.ndarray:
        target = file[reference]
        if h5py.check_dtype(ref=target.dtype) is not None:
            # A MATLAB cell inside the cell: follow its single reference.
            if target.size != 1:
                raise ValueError(
                    f"The {what} cell of item {index} in {str(self.path)!r} contains {target.size} references; expected 1."
                )
            target = file[target[()].reshape(-1)[0]]
        return target[()]


def load_imagenet_segmentation(path: str | Path) -> ImageNetSegmentation:
    """Open `gtsegs_ijcv.mat` of ImageNet-segmentation as a lazy sequence of (RGB image, 0/1 mask) pairs.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not an HDF5 file, or without reference datasets `value/img` and `value/gt` of
            equal length.
    """
    dataset = ImageNetSegmentation(path)
    logger.info("Opened %d ImageNet-segmentation images from %s", len(dataset), dataset.path)
    return dataset


def _open_hdf5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise ValueError(
            f"{str(path)!r} is not a readable HDF5 file ({error}); expected gtsegs_ijcv.mat of ImageNet-segmentation, "
            "a MATLAB v7.3 file. Re-save an older .mat file with MATLAB's save -v7.3."
        ) from error


def _reference_datasets(file: h5py.File, path: Path) -> tuple[np.ndarray, np.ndarray]:
    references = []
    for name in IMAGENET_SEGMENTATION_DATASETS:
        dataset = file.get(name)
        if not isinstance(dataset, h5py.Dataset) or h5py.check_dtype(ref=dataset.dtype) is None:
            found = sorted(file.keys())
            raise ValueError(
                f"{str(path)!r} has no dataset {name!r} of object references (top-level keys: {found}); expected "
                f"gtsegs_ijcv.mat of ImageNet-segmentation, with cell arrays {' and '.join(IMAGENET_SEGMENTATION_DATASETS)}."
            )
        references.append(np.asarray(dataset[()]).reshape(-1))

    images, masks = references
    if len(images) != len(masks):
        raise ValueError(
            f"{str(path)!r} has {len(images)} entries in value/img but {len(masks)} in value/gt; expected one mask per image."
        )
    return images, masks


class ImageMaskFolder(Sequence):
    """Images and PNG masks in two folders, paired by file stem; item `i` is `(RGB image, uint8 0/1 mask)`.

    Masks contain 0/1 or 0/255 in one channel (greyscale, palette or 1-bit PNG), or three equal channels.
    """

    def __init__(self, pairs: Sequence[tuple[Path, Path]]):
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Image.Image, np.ndarray]:
        image_path, mask_path = self.pairs[_check_index(index, len(self.pairs))]
        image = _open_picture(image_path).convert("RGB")
        mask = _read_mask(mask_path)
        if mask.shape != (image.height, image.width):
            raise ValueError(
                f"Mask {str(mask_path)!r} is {mask.shape[1]}x{mask.shape[0]} pixels but image {str(image_path)!r} is "
                f"{image.width}x{image.height}; expected the same size."
            )
        return image, mask

    def __iter__(self) -> Iterator[tuple[Image.Image, np.ndarray]]:
        for index in range(len(self.pairs)):
            yield self[index]


def load_image_mask_folder(images_dir: str | Path, masks_dir: str | Path) -> ImageMaskFolder:
    """Pair each image in `images_dir` with the PNG mask of the same stem in `masks_dir`.

    Masks without an image are ignored with a logged warning.

    Raises:
        FileNotFoundError: a folder that does not exist, or images without a mask (listed).
        ValueError: no images, or two images with the same stem.
    """
    images = list_images(images_dir)
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise FileNotFoundError(f"Mask folder {str(masks_dir)!r} does not exist or is not a folder.")

    stems: dict[str, Path] = {}
    for path in images:
        if path.stem in stems:
            raise ValueError(
                f"Images {stems[path.stem].name!r} and {path.name!r} in {str(images_dir)!r} share the stem "
                f"{path.stem!r}; masks are paired by stem, so rename one of them."
            )
        stems[path.stem] = path
    masks = {p.stem: p for p in masks_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png"}

    missing = [stem for stem in stems if stem not in masks]
    if missing:
        shown = ", ".join(repr(stem) for stem in missing[:5])
        raise FileNotFoundError(
            f"{len(missing)} image(s) in {str(images_dir)!r} have no PNG mask in {str(masks_dir)!r}: {shown}"
            f"{' ...' if len(missing) > 5 else ''}. Add a mask named <stem>.png for each image or remove the image."
        )
    unused = sorted(set(masks) - set(stems))
    if unused:
        logger.warning("Ignoring %d mask(s) without an image in %s, e.g. %s", len(unused), masks_dir, unused[0])

    logger.info("Paired %d images with masks (%s, %s)", len(stems), images_dir, masks_dir)
    return ImageMaskFolder([(path, masks[stem]) for stem, path in stems.items()])


def _open_picture(path: Path) -> Image.Image:
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"Cannot read {str(path)!r} as an image ({error}); remove or replace that file.") from error


def _read_mask(path: Path) -> np.ndarray:
    values = np.asarray(_open_picture(path))
    if values.ndim == 3:
        colours = values[..., :3]
        if not (colours == colours[..., :1]).all():
            raise ValueError(f"Mask {str(path)!r} has colour pixels; expected one channel of 0/1 or 0/255 values.")
        values = colours[..., 0]

    found = np.unique(values)
    if set(found.tolist()) <= {0, 1}:
        return values.astype(np.uint8)
    if set(found.tolist()) <= {0, 255}:
        return (values == 255).astype(np.uint8)
    raise ValueError(
        f"Mask {str(path)!r} has values {found[:10].tolist()}; expected 0/1 or 0/255 (background/foreground)."
    )


def _check_index(index: int, length: int) -> int:
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"Index must be an int; got {type(index).__name__}.")
    if not -length <= index < length:
        raise IndexError(f"Index {index} is out of range for {length} items.")
    return int(index) % length
