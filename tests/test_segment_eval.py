"""The segmentation evaluation job: every method on the same data, resumable, and its command line."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch
from conftest import tiny_clip
from PIL import Image
from test_segmentation import write_matlab_segmentation

import textspan.segment_eval as segment_eval
from hooked_clip.hooked_clip import HookedCLIP
from textspan.cli import main
from textspan.segmentation import load_image_mask_folder


def random_pairs(count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    generator = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        image = generator.integers(0, 255, (40, 52, 3), dtype=np.uint8)
        mask = np.zeros((40, 52), dtype=np.uint8)
        mask[10:30, 15:40] = 1
        pairs.append((image, mask))
    return pairs


@pytest.fixture
def folder_dataset(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for index, (image, mask) in enumerate(random_pairs(5)):
        Image.fromarray(image).save(images / f"picture{index}.jpg")
        Image.fromarray(mask * 255).save(masks / f"picture{index}.png")
    return images, masks


@pytest.fixture
def model():
    return HookedCLIP.from_open_clip_model(tiny_clip(), open_clip.get_tokenizer("ViT-B-32"))


def test_every_method_scored(model, folder_dataset, tmp_path):
    dataset = load_image_mask_folder(*folder_dataset)
    classifier = model.zero_shot_classifier(["cat", "dog", "car"], ["a photo of a {}."])
    results = segment_eval.evaluate_segmentation(model, dataset, classifier, tmp_path / "out", batch_size=2,
                                                 progress=False)
    assert set(results) == set(segment_eval.METHODS)
    for values in results.values():
        assert values["n_images"] == 5
        assert 0.0 <= values["pixel_accuracy"] <= 1.0
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == results
    assert len(list((tmp_path / "out" / "scores").glob("batch-*.json"))) == 3


def test_resume_reuses_batches(model, folder_dataset, tmp_path, monkeypatch):
    dataset = load_image_mask_folder(*folder_dataset)
    classifier = model.zero_shot_classifier(["cat", "dog"], ["a photo of a {}."])
    out = tmp_path / "out"
    first = segment_eval.evaluate_segmentation(model, dataset, classifier, out, methods=["ours", "rollout"],
                                               batch_size=2, progress=False)
    calls = []
    original = segment_eval._score_batch

    def counting(*args):
        calls.append(args[2])
        return original(*args)

    monkeypatch.setattr(segment_eval, "_score_batch", counting)
    (out / "scores" / "batch-00001.json").unlink()
    second = segment_eval.evaluate_segmentation(model, dataset, classifier, out, methods=["ours", "rollout"],
                                                batch_size=2, progress=False)
    assert calls == [2]
    assert second == first


def test_other_run_in_folder_rejected(model, folder_dataset, tmp_path):
    dataset = load_image_mask_folder(*folder_dataset)
    classifier = model.zero_shot_classifier(["cat", "dog"], ["a photo of a {}."])
    segment_eval.evaluate_segmentation(model, dataset, classifier, tmp_path, methods=["ours"], progress=False)
    with pytest.raises(ValueError, match="other settings"):
        segment_eval.evaluate_segmentation(model, dataset, classifier, tmp_path, methods=["rollout"], progress=False)


def test_ours_uses_bias_normalised_direction(model, folder_dataset):
    dataset = load_image_mask_folder(*folder_dataset)
    images = torch.stack([model.preprocess(picture) for picture, _ in [dataset[0], dataset[1]]])
    classes = torch.nn.functional.normalize(torch.randn(3, 24), dim=-1)
    maps = segment_eval.decomposition_heatmaps(model, images, classes[:2], classes)
    from textspan.heatmaps import text_heatmap

    expected = text_heatmap(model, images, classes[:2], reference_texts=classes)
    torch.testing.assert_close(maps, expected[[0, 1], [0, 1]])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--methods", "ours,lrp"], "Unknown methods"), (["--limit", "0"], "--limit 0")],
)
def test_bad_arguments_rejected(model, folder_dataset, tmp_path, arguments, message):
    classifier = model.zero_shot_classifier(["cat"], ["a {}"])
    dataset = load_image_mask_folder(*folder_dataset)
    if arguments[0] == "--methods":
        with pytest.raises(ValueError, match=message):
            segment_eval.evaluate_segmentation(model, dataset, classifier, tmp_path, methods=["ours", "lrp"])
    else:
        images, masks = folder_dataset
        code = main(["segment-eval", "--pretrained", "random", "--model", "ViT-S-32-alt", "--images", str(images),
                     "--masks", str(masks), "--out", str(tmp_path / "out"), *arguments])
        assert code == 2


def test_cli_on_hdf5_file(tmp_path, capsys):
    pairs = random_pairs(3, seed=1)
    data = tmp_path / "gtsegs_ijcv.mat"
    write_matlab_segmentation(data, [image for image, _ in pairs], [mask for _, mask in pairs])
    classnames = tmp_path / "classes.txt"
    classnames.write_text("cat\ndog\nrocket\n")
    code = main(["segment-eval", "--model", "ViT-S-32-alt", "--pretrained", "random", "--data", str(data),
                 "--out", str(tmp_path / "out"), "--classnames", str(classnames),
                 "--methods", "ours,raw-attention,rollout,gradcam,chefer", "--batch-size", "2"])
    output = capsys.readouterr().out
    assert code == 0
    assert "raw_attention" in output
    assert "mIoU" in output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["chefer"]["n_images"] == 3


def test_other_model_run_rejected(model, folder_dataset, tmp_path):
    dataset = load_image_mask_folder(*folder_dataset)
    classifier = model.zero_shot_classifier(["cat", "dog"], ["a photo of a {}."])
    segment_eval.evaluate_segmentation(model, dataset, classifier, tmp_path, methods=["ours"], progress=False)
    other = HookedCLIP.from_open_clip_model(tiny_clip(seed=3), open_clip.get_tokenizer("ViT-B-32"))
    other_classifier = other.zero_shot_classifier(["cat", "dog"], ["a photo of a {}."])
    with pytest.raises(ValueError, match="weights"):
        segment_eval.evaluate_segmentation(other, dataset, other_classifier, tmp_path, methods=["ours"], progress=False)
