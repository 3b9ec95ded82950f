"""Zero-shot segmentation evaluation of the text heatmaps and the baselines of Table 4, side by side.

Every method gets the same images, masks, text direction (the zero-shot prediction of the image)
and metrics. Scores are written per batch through temporary files, so an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hooked_clip.hooked_clip import HookedCLIP
from textspan._io import atomic_write_text
from textspan.baselines import HEATMAP_METHODS
from textspan.heatmaps import token_heatmaps
from textspan.decomposition import decompose
from textspan.segmentation import (
    ImageScores,
    SegmentationMetrics,
    heatmap_to_pixels,
    mask_to_model_geometry,
)

logger = logging.getLogger(__name__)

OURS = "ours"
METHODS = (OURS, *HEATMAP_METHODS)


def decomposition_heatmaps(
    model: HookedCLIP, images: Tensor, directions: Tensor, class_directions: Tensor
) -> Tensor:
    """Return the token-decomposition heatmap of each image for its own direction, bias-normalised.

    The mean direction of every class is subtracted first (footnote 3 of Gandelsman et al., 2024),
    which is the same as subtracting the mean heatmap over the classes.
    """
    visual = model.visual
    decomposition = decompose(visual, images, token_layers=range(visual.cfg.n_layers))
    normalised = directions - class_directions.mean(dim=0)
    maps = token_heatmaps(decomposition, normalised, visual.cfg.grid_size)
    return maps[torch.arange(images.shape[0]), torch.arange(images.shape[0])]


def evaluate_segmentation(
    model: HookedCLIP,
    dataset: Sequence,
    classifier: Tensor,
    out_dir: str | Path,
    methods: Sequence[str] = METHODS,
    batch_size: int = 8,
    clip_negative: bool = False,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Score every method on every `(image, mask)` pair of `dataset` and return the metrics per method.

    `classifier` is `[d_embed, n_classes]` (see `HookedCLIP.zero_shot_classifier`); each image's
    text direction is the column of its predicted class. Masks are brought to the model's input
    geometry (resize and centre crop of the preprocessing), heatmaps upsampled bilinearly to it.
    Per-batch scores go to `out_dir/scores/batch-NNNNN.json`; batches already there are not
    recomputed, and `out_dir/results.json` receives the final table.

    Raises:
        ValueError: an unknown method, an empty dataset, a classifier of the wrong width, or an
            output folder holding a run with other methods or batch size.
    """
    unknown = [method for method in methods if method not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown methods {unknown or methods}; expected a non-empty subset of {list(METHODS)}.")
    if len(dataset) == 0:
        raise ValueError("The dataset is empty; pass at least one (image, mask) pair.")
    if classifier.ndim != 2 or classifier.shape[0] != model.visual.cfg.d_embed:
        raise ValueError(
            f"classifier has shape {tuple(classifier.shape)}; expected [{model.visual.cfg.d_embed}, n_classes]."
        )
    out_dir = Path(out_dir)
    scores_dir = out_dir / "scores"
    scores_dir.mkdir(parents=True, exist_ok=True)
    _check_run(out_dir, {
        "methods": list(methods),
        "batch_size": batch_size,
        "n_images": len(dataset),
        "clip_negative": clip_negative,
        "model": model.visual.cfg.model_name,
        "pretrained": model.visual.cfg.pretrained,
        "weights": model.visual.weights_fingerprint(),
        "classifier": hashlib.sha256(classifier.detach().cpu().float().numpy().tobytes()).hexdigest()[:16],
        "dataset": dataset_id(dataset),
    })

    metrics = {method: SegmentationMetrics(clip_negative=clip_negative) for method in methods}
    class_directions = classifier.T.to(model.device)
    for start in tqdm(range(0, len(dataset), batch_size), desc="segmentation", disable=not progress):
        target = scores_dir / f"batch-{start // batch_size:05d}.json"
        if not target.is_file():
            batch_scores = _score_batch(model, dataset, start, batch_size, class_directions, methods, metrics)
            atomic_write_text(target, json.dumps(batch_scores))
        else:
            batch_scores = json.loads(target.read_text())
            for method in methods:
                metrics[method].add_scores([ImageScores.from_dict(entry) for entry in batch_scores[method]])

    results = {method: metrics[method].compute() for method in methods}
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2))
    return results


def dataset_id(dataset: Sequence) -> str:
    """Return a short description of the data source (its file or folders), to tell runs on different data apart."""
    if hasattr(dataset, "dataset") and hasattr(dataset, "indices"):  # torch.utils.data.Subset
        return f"{dataset_id(dataset.dataset)}, first {len(dataset)} items"
    for attribute in ("path", "pairs"):
        value = getattr(dataset, attribute, None)
        if value is not None:
            text = str(value) if attribute == "path" else f"{value[0][0].parent} + {value[0][1].parent}"
            return text
    return f"{type(dataset).__name__} of {len(dataset)} items"


def format_table(results: dict[str, dict[str, float]]) -> str:
    """Render Table 4 rows: pixel accuracy, mIoU and mAP in percent, one row per method."""
    lines = [f"{'method':<16}{'pixel acc.':>12}{'mIoU':>10}{'mAP':>10}"]
    for method, values in results.items():
        lines.append(
            f"{method:<16}{100 * values['pixel_accuracy']:>12.2f}{100 * values['mIoU']:>10.2f}{100 * values['mAP']:>10.2f}"
        )
    return "\n".join(lines)


def _score_batch(model, dataset, start, batch_size, class_directions, methods, metrics) -> dict[str, list[dict]]:
    pairs = [dataset[index] for index in range(start, min(start + batch_size, len(dataset)))]
    images = torch.stack([model.preprocess(picture) for picture, _ in pairs]).to(model.device)
    masks = torch.stack([mask_to_model_geometry(mask, model.preprocess_cfg) for _, mask in pairs])
    keys = [str(index) for index in range(start, start + len(pairs))]

    with torch.no_grad():
        embeddings = model.encode_image(images)
    directions = class_directions[(embeddings @ class_directions.T).argmax(dim=1)]

    size = tuple(masks.shape[-2:])
    batch_scores = {}
    for method in methods:
        if method == OURS:
            with torch.no_grad():
                maps = decomposition_heatmaps(model, images, directions, class_directions)
        else:
            maps = HEATMAP_METHODS[method](model.visual, images, directions)
        scores = metrics[method].update(heatmap_to_pixels(maps, size), masks, keys)
        batch_scores[method] = [dataclasses.asdict(score) for score in scores]
    return batch_scores


def _check_run(out_dir: Path, settings: dict) -> None:
    path = out_dir / "run.json"
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing != settings:
            differing = {key: (existing.get(key), value) for key, value in settings.items() if existing.get(key) != value}
            raise ValueError(
                f"{str(out_dir)!r} already contains a run with other settings (existing, requested: {differing}). "
                "Use another output folder, or the same settings to resume it."
            )
        logger.info("Resuming the segmentation run in %s", out_dir)
        return
    atomic_write_text(path, json.dumps(settings, indent=2))
