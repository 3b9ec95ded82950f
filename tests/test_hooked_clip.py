"""HookedCLIP: text tower parity, zero-shot classifiers and input checks."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F
from conftest import relative_error, tiny_clip
from open_clip.zero_shot_classifier import build_zero_shot_classifier

from hooked_clip.hooked_clip import CLASSNAMES, HookedCLIP

TEXTS = [
    "a photo of a cat",
    "a dog",
    "a long description of a colourful parrot sitting on a wet branch in the rain at dusk",
]


@pytest.fixture(scope="module")
def clip_pair():
    clip = tiny_clip()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    return clip, tokenizer, HookedCLIP.from_open_clip_model(clip, tokenizer)


def test_encode_text_matches_open_clip(clip_pair):
    clip, tokenizer, model = clip_pair
    with torch.no_grad():
        expected = clip.encode_text(tokenizer(TEXTS))
    assert relative_error(model.encode_text(TEXTS), expected) < 1e-5


def test_encode_text_batches_agree(clip_pair):
    _, _, model = clip_pair
    together = model.encode_text(TEXTS)
    one_by_one = model.encode_text(TEXTS, batch_size=1)
    assert relative_error(one_by_one, together) < 1e-5


def test_encode_image_matches_open_clip(clip_pair):
    clip, _, model = clip_pair
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = clip.encode_image(images, normalize=True)
    assert relative_error(model.encode_image(images, normalize=True), expected) < 1e-5


def test_zero_shot_classifier_matches_open_clip(clip_pair):
    clip, tokenizer, model = clip_pair
    classnames = ["cat", "dog", "parrot"]
    templates = ["a photo of a {}.", "a drawing of a {}."]
    with torch.no_grad():
        expected = build_zero_shot_classifier(clip, tokenizer, classnames, templates, use_tqdm=False)
    classifier = model.zero_shot_classifier(classnames, templates)
    assert classifier.shape == (24, 3)
    assert relative_error(classifier, expected) < 1e-5


def test_zero_shot_classifier_is_template_mean(clip_pair):
    _, _, model = clip_pair
    templates = ["a photo of a {}.", "a sketch of a {}."]
    classifier = model.zero_shot_classifier(["owl"], templates)
    embeddings = F.normalize(model.encode_text(["a photo of a owl.", "a sketch of a owl."]), dim=-1)
    expected = F.normalize(embeddings.mean(dim=0), dim=-1)
    torch.testing.assert_close(classifier[:, 0], expected)
    torch.testing.assert_close(classifier.norm(dim=0), torch.ones(1))


def test_named_lists_available(clip_pair):
    _, _, model = clip_pair
    assert len(CLASSNAMES["imagenet"]) == 1000
    classifier = model.zero_shot_classifier(["owl", "fox"], "simple_imagenet")
    assert classifier.shape == (24, 2)


def test_run_with_cache_delegates(clip_pair):
    _, _, model = clip_pair
    embedding, cache = model.run_with_cache(torch.randn(1, 3, 32, 32), names_filter="hook_pooled")
    assert embedding.shape == (1, 24)
    assert list(cache.keys()) == ["hook_pooled"]


def test_preprocess_matches_image_size(clip_pair):
    _, _, model = clip_pair
    from PIL import Image

    picture = Image.new("RGB", (50, 40), color=(200, 30, 30))
    assert tuple(model.preprocess(picture).shape) == (3, 32, 32)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda model: model.encode_text([]), "empty"),
        (lambda model: model.encode_text("a cat"), "single string"),
        (lambda model: model.encode_text(["a cat", ""]), r"texts\[1\]"),
        (lambda model: model.zero_shot_classifier(["cat"], []), "templates is empty"),
        (lambda model: model.zero_shot_classifier(["cat"], ["a photo"]), "placeholder"),
        (lambda model: model.zero_shot_classifier([], ["a {}"]), "classnames is empty"),
    ],
    ids=["empty", "string", "blank-entry", "no-templates", "no-placeholder", "no-classes"],
)
def test_bad_text_input_rejected(clip_pair, call, message):
    _, _, model = clip_pair
    with pytest.raises(ValueError, match=message):
        call(model)


def test_unknown_list_name_rejected(clip_pair):
    _, _, model = clip_pair
    with pytest.raises(KeyError, match="openai_imagenet"):
        model.zero_shot_classifier("imagenet", "openai_imagenett")


def test_vision_only_module_rejected():
    clip = tiny_clip()
    with pytest.raises(TypeError, match="HookedViT.from_open_clip_model"):
        HookedCLIP.from_open_clip_model(clip.visual)
