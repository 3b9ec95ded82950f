"""Tests of heatmap binarisation, the segmentation metrics, mask geometry and the data loaders."""

from __future__ import annotations

import itertools
import pickle

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from textspan.segmentation import (
    SegmentationMetrics,
    average_precision,
    binarize,
    heatmap_to_pixels,
    load_image_mask_folder,
    load_imagenet_segmentation,
    mask_to_model_geometry,
    normalize_heatmaps,
    score_image,
)


def brute_force_average_precision(scores: list[float], targets: list[bool]) -> float:
    """AP from its definition: at each distinct score s, precision of {score >= s} times the recall gained."""
    positives = sum(targets)
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        selected = [target for score, target in zip(scores, targets) if score >= threshold]
        recall = sum(selected) / positives
        total += (recall - previous_recall) * sum(selected) / len(selected)
        previous_recall = recall
    return total


def random_batch(seed: int, batch: int = 7, size: tuple[int, int] = (12, 10)) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    heatmaps = torch.randn(batch, *size, generator=generator)
    masks = torch.rand(batch, *size, generator=generator) > 0.6
    return heatmaps, masks


# -- binarisation --------------------------------------------------------------------------------


def test_binarize_mean_rule_by_hand():
    heatmap = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 10.0]]])
    # normalised: [0, .1, .2, .3, .4, 1], mean 1/3

    expected = torch.tensor([[[False, False, False], [False, True, True]]])
    assert torch.equal(binarize(heatmap), expected)


def test_binarize_float_and_callable_thresholds():
    heatmap = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 10.0]]])

    assert torch.equal(binarize(heatmap, 0.25), torch.tensor([[[False, False, False], [True, True, True]]]))
    assert torch.equal(binarize(heatmap, lambda image: image.median()), binarize(heatmap, 0.2))
    assert torch.equal(binarize(heatmap, 0.0), torch.tensor([[[False, True, True], [True, True, True]]]))


def test_binarize_is_per_image_and_scale_invariant():
    heatmaps, _ = random_batch(0)
    rescaled = heatmaps * torch.arange(1, 8).view(7, 1, 1) + 3.0

    together = binarize(rescaled)
    for index in range(7):
        assert torch.equal(together[index], binarize(heatmaps[index : index + 1])[0])


def test_binarize_constant_heatmap_is_background():
    heatmaps = torch.full((2, 4, 5), 3.0)

    normalized = normalize_heatmaps(heatmaps)
    assert not bool(torch.isnan(normalized).any())
    assert not bool(binarize(heatmaps).any())
    assert not bool(binarize(heatmaps, 0.0).any())


def test_binarize_clip_negative():
    heatmap = torch.tensor([[[-5.0, -1.0, 0.0, 1.0, 3.0]]])
    # clipped: [0, 0, 0, 1, 3] -> normalised [0, 0, 0, 1/3, 1], mean 4/15
    # unclipped: normalised [0, 1/2, 5/8, 3/4, 1], mean 23/40

    assert torch.equal(binarize(heatmap, clip_negative=True), torch.tensor([[[False, False, False, True, True]]]))
    assert torch.equal(binarize(heatmap), torch.tensor([[[False, False, True, True, True]]]))


@pytest.mark.parametrize("threshold", [1.5, -0.1, "median", True])
def test_binarize_invalid_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        binarize(torch.rand(1, 3, 3), threshold)


def test_binarize_callable_returning_nan():
    with pytest.raises(ValueError, match="finite"):
        binarize(torch.rand(2, 3, 3), lambda image: float("nan"))


@pytest.mark.parametrize("shape", [(0, 4, 4), (2, 0, 4), (1, 3, 0)])
def test_binarize_empty_heatmaps(shape):
    with pytest.raises(ValueError, match="empty"):
        binarize(torch.zeros(shape))


def test_binarize_rejects_wrong_rank_and_nan():
    with pytest.raises(ValueError, match=r"expected \[batch, height, width\]"):
        binarize(torch.rand(4, 4))
    with pytest.raises(ValueError, match=r"\[1\] \(batch indices\)"):
        binarize(torch.tensor([[[0.0, 1.0]], [[float("nan"), 1.0]]]))
    with pytest.raises(TypeError, match="real-valued"):
        binarize(np.zeros((1, 2, 2)))


# -- average precision ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_average_precision_matches_definition(seed):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (40,), generator=generator).double() / 5  # many ties
    targets = torch.rand(40, generator=generator) > 0.5

    expected = brute_force_average_precision(scores.tolist(), targets.tolist())
    assert average_precision(scores, targets) == pytest.approx(expected, abs=1e-12)


def test_average_precision_without_positives_is_zero():
    assert average_precision(torch.rand(5), torch.zeros(5, dtype=torch.bool)) == 0.0


def test_average_precision_length_mismatch():
    with pytest.raises(ValueError, match="equal lengths"):
        average_precision(torch.rand(5), torch.ones(4, dtype=torch.bool))


# -- per-image scores ----------------------------------------------------------------------------


def test_score_image_by_hand():
    heatmap = torch.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]])
    mask = torch.tensor([[0, 0, 0, 1], [0, 1, 1, 1]])
    # prediction (normalised > 0.5): [[0, 0, 0, 0], [1, 1, 1, 1]]

    scores = score_image(heatmap, mask, key="a")

    assert scores.key == "a"
    assert (scores.correct, scores.labelled) == (6, 8)
    assert scores.intersection == (3, 3)
    assert scores.union == (5, 5)
    assert scores.pixel_accuracy == 0.75
    assert scores.iou == (0.6, 0.6)


def test_average_precision_pools_both_classes():
    heatmap = torch.rand(6, 5, generator=torch.Generator().manual_seed(3))
    mask = torch.rand(6, 5, generator=torch.Generator().manual_seed(4)) > 0.5
    normalized = ((heatmap - heatmap.min()) / (heatmap.max() - heatmap.min())).double()

    pooled_scores = torch.cat([1 - normalized.flatten(), normalized.flatten()]).tolist()
    pooled_targets = torch.cat([~mask.flatten(), mask.flatten()]).tolist()
    scores = score_image(heatmap, mask)

    assert scores.average_precision == pytest.approx(brute_force_average_precision(pooled_scores, pooled_targets))
    assert scores.foreground_average_precision == pytest.approx(
        brute_force_average_precision(normalized.flatten().tolist(), mask.flatten().tolist())
    )


def test_score_image_constant_heatmap():
    mask = torch.zeros(4, 4, dtype=torch.long)
    mask[:1] = 1

    scores = score_image(torch.zeros(4, 4), mask)

    assert scores.correct == 12
    assert scores.average_precision == pytest.approx(0.5)
    assert scores.foreground_average_precision == pytest.approx(0.25)
    assert scores.iou == (0.75, 0.0)


# -- dataset metrics -----------------------------------------------------------------------------


def test_metrics_sum_counts_before_dividing():
    metrics = SegmentationMetrics()
    first = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    second = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]])
    metrics.update(first, torch.tensor([[[0, 1], [1, 1]]]))
    metrics.update(second, torch.tensor([[[1, 1, 1, 1]]]))
    # image 1: fg pred {1, 3}, mask {1, 2, 3}: bg I/U 1/2, fg 2/3; image 2: bg 0/3, fg 1/4

    result = metrics.compute()

    assert result["n_images"] == 2
    assert result["pixel_accuracy"] == pytest.approx(4 / 8)
    assert result["IoU_background"] == pytest.approx(1 / 5)
    assert result["IoU_foreground"] == pytest.approx(3 / 7)
    assert result["mIoU"] == pytest.approx((1 / 5 + 3 / 7) / 2)
    per_image = metrics.per_image
    assert result["mAP"] == pytest.approx((per_image[0].average_precision + per_image[1].average_precision) / 2)


def test_metrics_independent_of_batches_and_order():
    heatmaps, masks = random_batch(1, batch=9)
    whole = SegmentationMetrics()
    whole.update(heatmaps, masks)
    expected = whole.compute()

    for split, seed in itertools.product([(1, 8), (4, 5), (2, 3, 4)], range(2)):
        order = torch.randperm(9, generator=torch.Generator().manual_seed(seed))
        metrics = SegmentationMetrics()
        start = 0
        for size in split:
            chosen = order[start : start + size]
            metrics.update(heatmaps[chosen], masks[chosen])
            start += size
        assert metrics.compute() == expected, (split, seed)


def test_metrics_per_image_keys_and_reset():
    heatmaps, masks = random_batch(2, batch=3)
    metrics = SegmentationMetrics(threshold=0.4)

    returned = metrics.update(heatmaps, masks, keys=["a", "b", "c"])

    assert [scores.key for scores in metrics.per_image] == ["a", "b", "c"]
    assert returned == metrics.per_image
    assert len(metrics) == 3
    metrics.reset()
    assert len(metrics) == 0


def test_metrics_wrong_mask_size():
    metrics = SegmentationMetrics()
    with pytest.raises(ValueError, match=r"masks have shape \(1, 16, 16\) but heatmaps have \(1, 32, 32\)"):
        metrics.update(torch.rand(1, 32, 32), torch.zeros(1, 16, 16, dtype=torch.bool))


def test_metrics_mask_values_not_binary():
    metrics = SegmentationMetrics()
    masks = torch.zeros(1, 4, 4, dtype=torch.uint8)
    masks[0, 0, 0] = 255
    with pytest.raises(ValueError, match=r"values \[0, 255\].*mask > 0"):
        metrics.update(torch.rand(1, 4, 4), masks)


def test_metrics_errors_on_empty_input():
    metrics = SegmentationMetrics()
    with pytest.raises(ValueError, match="empty"):
        metrics.update(torch.zeros(0, 4, 4), torch.zeros(0, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="call update"):
        metrics.compute()
    with pytest.raises(ValueError, match="2 keys for 1 heatmaps"):
        metrics.update(torch.rand(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool), keys=["a", "b"])
    with pytest.raises(ValueError, match="threshold"):
        SegmentationMetrics(threshold="otsu")


# -- geometry ------------------------------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(48, 80), (90, 40), (32, 32)])
def test_mask_geometry_matches_image_preprocess(height, width):
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 5 : height // 2, width // 3 : width - 4] = 1
    mask[height - 10 :, :6] = 1
    picture = Image.fromarray(np.repeat(mask[..., None] * 255, 3, axis=2))
    preprocess = image_transform_v2(PreprocessCfg(size=32, mean=(0, 0, 0), std=(1, 1, 1)), is_train=False)

    image_side = preprocess(picture)[0] > 0.5
    mask_side = mask_to_model_geometry(mask, PreprocessCfg(size=32))

    assert mask_side.shape == (32, 32)
    assert mask_side.dtype == torch.bool
    # Bicubic and nearest-neighbour resizing differ only next to an edge of the mask.
    edges = F.max_pool2d(image_side[None, None].float(), 3, 1, 1) != -F.max_pool2d(
        -image_side[None, None].float(), 3, 1, 1
    )
    assert torch.equal(mask_side[~edges[0, 0]], image_side[~edges[0, 0]])
    assert float((mask_side != image_side).float().mean()) < 0.1


def test_mask_geometry_shortest_side_by_hand():
    mask = np.zeros((64, 96), dtype=np.uint8)
    mask[:, 48:] = 1
    # 64x96 -> 32x48 -> centre crop columns 8..40: the right half of the crop is foreground

    resized = mask_to_model_geometry(mask, 32)

    assert not bool(resized[:, :16].any())
    assert bool(resized[:, 16:].all())


def test_mask_geometry_squash_and_longest():
    mask = np.ones((20, 40), dtype=np.uint8)

    squashed = mask_to_model_geometry(mask, (16, 16), resize_mode="squash")
    padded = mask_to_model_geometry(mask, 16, resize_mode="longest")

    assert bool(squashed.all())
    assert padded.shape == (16, 16)
    assert bool(padded[4:12].all())
    assert not bool(padded[:4].any())
    assert not bool(padded[12:].any())


def test_mask_geometry_errors():
    with pytest.raises(ValueError, match=r"values \[0, 2\]"):
        mask_to_model_geometry(np.array([[0, 2], [0, 0]]), 4)
    with pytest.raises(ValueError, match="size 0 is invalid|size \\(0, 0\\) is invalid"):
        mask_to_model_geometry(np.zeros((4, 4), dtype=np.uint8), 0)
    with pytest.raises(ValueError, match="resize_mode='crop'"):
        mask_to_model_geometry(np.zeros((4, 4), dtype=np.uint8), 4, resize_mode="crop")


def test_heatmap_to_pixels_matches_scale_factor():
    heatmaps = torch.rand(2, 4, 4)

    expected = F.interpolate(heatmaps[:, None], scale_factor=8, mode="bilinear")[:, 0]
    torch.testing.assert_close(heatmap_to_pixels(heatmaps, 32), expected)
    assert heatmap_to_pixels(heatmaps[0], (32, 16)).shape == (32, 16)


def test_heatmap_to_pixels_rejects_empty():
    with pytest.raises(ValueError, match="non-empty"):
        heatmap_to_pixels(torch.zeros(2, 0, 4), 32)


# -- ImageNet-segmentation HDF5 ------------------------------------------------------------------


def write_matlab_segmentation(path, images: list[np.ndarray], masks: list[np.ndarray], nested_gt: bool = True):
    """Write images `[height, width, 3]` and masks `[height, width]` as MATLAB v7.3 stores cell arrays.

    Each cell is an object reference to a dataset in the `#refs#` group; MATLAB's column-major
    arrays appear transposed, so an image is stored as `[3, width, height]`.
    """
    with h5py.File(path, "w") as file:
        refs = file.create_group("#refs#")
        image_refs, mask_refs = [], []
        for index, (image, mask) in enumerate(zip(images, masks)):
            image_refs.append(refs.create_dataset(f"img{index}", data=image.transpose(2, 1, 0)).ref)
            mask_dataset = refs.create_dataset(f"gt{index}", data=mask.T.astype(np.uint8))
            if nested_gt:
                cell = refs.create_dataset(f"cell{index}", shape=(1, 1), dtype=h5py.ref_dtype)
                cell[0, 0] = mask_dataset.ref
                mask_dataset = cell
            mask_refs.append(mask_dataset.ref)

        value = file.create_group("value")
        for name, references in (("img", image_refs), ("gt", mask_refs)):
            dataset = value.create_dataset(name, shape=(len(references), 1), dtype=h5py.ref_dtype)
            for index, reference in enumerate(references):
                dataset[index, 0] = reference


def example_pairs(count: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    generator = np.random.default_rng(0)
    images, masks = [], []
    for index in range(count):
        height, width = 20 + 3 * index, 30 - 2 * index
        images.append(generator.integers(0, 256, (height, width, 3), dtype=np.uint8))
        masks.append((generator.random((height, width)) > 0.5).astype(np.uint8))
    return images, masks


@pytest.mark.parametrize("nested_gt", [True, False])
def test_imagenet_segmentation_reads_matlab_layout(tmp_path, nested_gt):
    images, masks = example_pairs()
    path = tmp_path / "gtsegs_ijcv.mat"
    write_matlab_segmentation(path, images, masks, nested_gt)

    with load_imagenet_segmentation(path) as dataset:
        assert len(dataset) == 3
        for index, (picture, mask) in enumerate(dataset):
            assert picture.mode == "RGB"
            assert picture.size == (images[index].shape[1], images[index].shape[0])
            assert np.array_equal(np.asarray(picture), images[index])
            assert mask.dtype == np.uint8
            assert np.array_equal(mask, masks[index])
        assert np.array_equal(dataset[-1][1], masks[-1])


def test_imagenet_segmentation_lazy_and_picklable(tmp_path):
    images, masks = example_pairs(2)
    path = tmp_path / "gtsegs_ijcv.mat"
    write_matlab_segmentation(path, images, masks)

    dataset = load_imagenet_segmentation(path)
    assert dataset._file is None
    dataset[0]
    copy = pickle.loads(pickle.dumps(dataset))

    assert np.array_equal(copy[1][1], masks[1])
    dataset.close()
    copy.close()


def test_imagenet_segmentation_index_errors(tmp_path):
    images, masks = example_pairs(2)
    path = tmp_path / "gtsegs_ijcv.mat"
    write_matlab_segmentation(path, images, masks)

    with load_imagenet_segmentation(path) as dataset:
        with pytest.raises(IndexError, match="Index 2 is out of range for 2"):
            dataset[2]
        with pytest.raises(TypeError, match="int"):
            dataset["0"]


def test_imagenet_segmentation_missing_datasets(tmp_path):
    path = tmp_path / "other.mat"
    with h5py.File(path, "w") as file:
        file.create_dataset("value/img", data=np.zeros(3))

    with pytest.raises(ValueError, match=r"no dataset 'value/img' of object references"):
        load_imagenet_segmentation(path)

    path_without_gt = tmp_path / "no_gt.mat"
    images, masks = example_pairs(1)
    write_matlab_segmentation(path_without_gt, images, masks)
    with h5py.File(path_without_gt, "a") as file:
        del file["value/gt"]
    with pytest.raises(ValueError, match=r"no dataset 'value/gt'"):
        load_imagenet_segmentation(path_without_gt)


def test_imagenet_segmentation_not_hdf5_or_missing(tmp_path):
    path = tmp_path / "old.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file")

    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        load_imagenet_segmentation(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_imagenet_segmentation(tmp_path / "absent.mat")


def test_imagenet_segmentation_bad_mask_values(tmp_path):
    images, masks = example_pairs(2)
    masks[1][0, 0] = 2
    path = tmp_path / "gtsegs_ijcv.mat"
    write_matlab_segmentation(path, images, masks)

    with load_imagenet_segmentation(path) as dataset:
        dataset[0]
        with pytest.raises(ValueError, match=r"mask 1 in .* has values \[0, 1, 2\]"):
            dataset[1]


# -- image and mask folders ----------------------------------------------------------------------


def test_image_mask_folder_pairs_by_stem(tmp_path):
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    images, masks = example_pairs(3)
    Image.fromarray(images[0]).save(images_dir / "b.png")
    Image.fromarray(images[1]).save(images_dir / "a.jpg")
    Image.fromarray(images[2]).save(images_dir / "c.png")
    Image.fromarray(masks[0] * 255).save(masks_dir / "b.png")
    Image.fromarray(masks[1]).save(masks_dir / "a.png")
    Image.fromarray(masks[2].astype(bool)).save(masks_dir / "c.png")
    Image.fromarray(masks[2]).save(masks_dir / "unused.png")

    dataset = load_image_mask_folder(images_dir, masks_dir)

    assert len(dataset) == 3
    assert [pair[0].name for pair in dataset.pairs] == ["a.jpg", "b.png", "c.png"]
    for (picture, mask), expected in zip(dataset, [masks[1], masks[0], masks[2]]):
        assert picture.mode == "RGB"
        assert np.array_equal(mask, expected)


def test_image_mask_folder_missing_mask(tmp_path):
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    images, masks = example_pairs(2)
    Image.fromarray(images[0]).save(images_dir / "a.png")
    Image.fromarray(images[1]).save(images_dir / "b.png")
    Image.fromarray(masks[0]).save(masks_dir / "a.png")

    with pytest.raises(FileNotFoundError, match=r"1 image\(s\) .* have no PNG mask .*'b'"):
        load_image_mask_folder(images_dir, masks_dir)
    with pytest.raises(FileNotFoundError, match="Mask folder"):
        load_image_mask_folder(images_dir, tmp_path / "absent")


def test_image_mask_folder_bad_masks(tmp_path):
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    images, masks = example_pairs(2)
    Image.fromarray(images[0]).save(images_dir / "a.png")
    Image.fromarray(images[1]).save(images_dir / "b.png")
    Image.fromarray(masks[0] * 128).save(masks_dir / "a.png")
    Image.fromarray(masks[0]).save(masks_dir / "b.png")

    dataset = load_image_mask_folder(images_dir, masks_dir)
    with pytest.raises(ValueError, match=r"a.png' has values \[0, 128\]"):
        dataset[0]
    with pytest.raises(ValueError, match="expected the same size"):
        dataset[1]
