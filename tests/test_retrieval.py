"""Tests for textspan.retrieval: text-to-image and property-based retrieval, storage, input checks."""

from __future__ import annotations

import os
import re
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_clip

from hooked_clip import HookedViT
from textspan import retrieval
from textspan.decomposition import decompose
from textspan.retrieval import (
    RetrievalResult,
    load_head_outputs,
    nearest_images,
    nearest_images_for_heads,
    save_head_outputs,
    top_images_for_texts,
)

N_IMAGES, LAYERS, N_HEADS, D_EMBED = 20, (10, 11), 3, 8


def random_heads(seed: int = 0, n_images: int = N_IMAGES, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_images, len(LAYERS), N_HEADS, D_EMBED, generator=generator, dtype=dtype)


def random_texts(n_texts: int = 4, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n_texts, D_EMBED, generator=generator), dim=-1)


def brute_force_ranking(scores: list[float], k: int, skip: int | None = None) -> tuple[list[int], list[float]]:
    """Rank by descending score, then ascending index, with Python's sort."""
    candidates = [(-score, index) for index, score in enumerate(scores) if index != skip]
    best = sorted(candidates)[:k]
    return [index for _, index in best], [-negative for negative, _ in best]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


# ---------------------------------------------------------------------------
# top_images_for_texts


def test_top_images_planted_alignment():
    heads = 0.1 * random_heads()
    texts = random_texts(2)
    heads[7, 1, 2] = 5 * texts[0]
    heads[3, 1, 2] = 5 * texts[1]

    result = top_images_for_texts(heads, LAYERS, 11, 2, texts, k=3)

    assert isinstance(result, RetrievalResult)
    assert result.indices.shape == (2, 3)
    assert result.scores.shape == (2, 3)
    assert result.indices[0, 0] == 7
    assert result.indices[1, 0] == 3
    assert result.scores[0, 0] == pytest.approx(5.0, rel=1e-5)


@pytest.mark.parametrize("normalize", [False, True])
def test_top_images_match_brute_force(normalize):
    heads = random_heads(seed=2, dtype=torch.float64)
    texts = random_texts(5, seed=3).double() * torch.tensor([[1.0], [2.0], [0.5], [3.0], [1.0]], dtype=torch.float64)
    k = 6

    result = top_images_for_texts(heads, LAYERS, 10, 1, texts, k=k, normalize=normalize)

    contributions = heads[:, 0, 1]
    for t, text in enumerate(texts):
        if normalize:
            scores = [cosine(contribution, text) for contribution in contributions]
        else:
            scores = [float(contribution @ text) for contribution in contributions]
        expected_indices, expected_scores = brute_force_ranking(scores, k)
        assert result.indices[t].tolist() == expected_indices
        torch.testing.assert_close(result.scores[t], torch.tensor(expected_scores, dtype=torch.float64))


def test_top_images_scores_descending():
    result = top_images_for_texts(random_heads(), LAYERS, 11, 0, random_texts(3), k=N_IMAGES)
    assert bool((result.scores[:, :-1] >= result.scores[:, 1:]).all())
    assert sorted(result.indices[0].tolist()) == list(range(N_IMAGES))


def test_top_images_ties_by_lower_index():
    heads = random_heads()
    text = random_texts(1)
    tied = [15, 2, 9, 4]
    for image in tied:
        heads[image, 0, 0] = 10 * text[0]

    first = top_images_for_texts(heads, LAYERS, 10, 0, text, k=4)
    second = top_images_for_texts(heads.clone(), LAYERS, 10, 0, text.clone(), k=4)

    assert first.indices[0].tolist() == sorted(tied)
    assert torch.equal(first.indices, second.indices)
    assert len(set(first.scores[0].tolist())) == 1


def test_top_images_all_equal_scores():
    heads = torch.zeros(N_IMAGES, len(LAYERS), N_HEADS, D_EMBED)
    result = top_images_for_texts(heads, LAYERS, 10, 0, random_texts(2), k=5)
    assert result.indices.tolist() == [[0, 1, 2, 3, 4]] * 2


def test_top_images_cosine_zero_contribution_scores_zero():
    heads = random_heads()
    heads[4, 1, 1] = 0
    result = top_images_for_texts(heads, LAYERS, 11, 1, random_texts(1), k=N_IMAGES, normalize=True)
    position = result.indices[0].tolist().index(4)
    assert float(result.scores[0, position]) == 0.0


def test_top_images_half_precision_scored_in_float32():
    heads = random_heads().to(torch.bfloat16)
    texts = random_texts(2).to(torch.bfloat16)
    result = top_images_for_texts(heads, LAYERS, 10, 2, texts, k=3)
    expected = top_images_for_texts(heads.float(), LAYERS, 10, 2, texts.float(), k=3)
    assert result.scores.dtype == torch.float32
    assert torch.equal(result.indices, expected.indices)


def test_top_images_unsorted_layers():
    heads = random_heads()
    texts = random_texts(2)
    reordered = heads.flip(1)
    result = top_images_for_texts(reordered, [11, 10], 11, 1, texts, k=4)
    expected = top_images_for_texts(heads, LAYERS, 11, 1, texts, k=4)
    assert torch.equal(result.indices, expected.indices)
    assert torch.equal(result.scores, expected.scores)


# ---------------------------------------------------------------------------
# nearest_images


def planted_cluster(seed: int = 5) -> tuple[torch.Tensor, list[int]]:
    """Head (11, 1) gives images 2, 5, 9 and 13 one shared direction; other heads are noise."""
    heads = random_heads(seed)
    members = [2, 5, 9, 13]
    generator = torch.Generator().manual_seed(seed + 1)
    direction = 4 * F.normalize(torch.randn(D_EMBED, generator=generator), dim=0)
    for image in members:
        heads[image, 1, 1] = direction + 0.1 * torch.randn(D_EMBED, generator=generator)
    return heads, members


def test_nearest_finds_planted_cluster():
    heads, members = planted_cluster()
    result = nearest_images(heads, LAYERS, 11, 1, query=5, k=3)
    assert sorted(result.indices[0].tolist()) == [2, 9, 13]
    assert bool((result.scores > 0.9).all())


def test_nearest_other_head_ignores_cluster():
    heads, members = planted_cluster()
    result = nearest_images(heads, LAYERS, 11, 0, query=5, k=3)
    assert sorted(result.indices[0].tolist()) != [2, 9, 13]


def test_nearest_exclude_query():
    heads, _ = planted_cluster()

    excluded = nearest_images(heads, LAYERS, 11, 1, query=5, k=N_IMAGES - 1)
    included = nearest_images(heads, LAYERS, 11, 1, query=5, k=N_IMAGES, exclude_query=False)

    assert 5 not in excluded.indices[0].tolist()
    assert sorted(excluded.indices[0].tolist()) == [i for i in range(N_IMAGES) if i != 5]
    assert included.indices[0, 0] == 5
    assert float(included.scores[0, 0]) == pytest.approx(1.0, abs=1e-6)
    assert included.indices[0, 1:].tolist() == excluded.indices[0].tolist()


def test_nearest_exclude_query_k_limit():
    heads = random_heads()
    with pytest.raises(ValueError, match=r"k=20 is invalid: there are 19 candidate images"):
        nearest_images(heads, LAYERS, 10, 0, query=0, k=N_IMAGES)
    assert nearest_images(heads, LAYERS, 10, 0, query=0, k=N_IMAGES, exclude_query=False).indices.shape == (1, 20)


def test_nearest_single_image_excluded():
    heads = random_heads(n_images=1)
    with pytest.raises(ValueError, match="0 candidate images.*exclude_query=False"):
        nearest_images(heads, LAYERS, 10, 0, query=0, k=1)


@pytest.mark.parametrize("normalize", [True, False])
def test_nearest_matches_brute_force(normalize):
    heads = random_heads(seed=7, dtype=torch.float64)
    k = 8
    result = nearest_images(heads, LAYERS, 10, 2, query=[3, 17], k=k, normalize=normalize)

    contributions = heads[:, 0, 2]
    for row, query in enumerate([3, 17]):
        if normalize:
            scores = [cosine(contribution, contributions[query]) for contribution in contributions]
        else:
            scores = [float(contribution @ contributions[query]) for contribution in contributions]
        expected_indices, expected_scores = brute_force_ranking(scores, k, skip=query)
        assert result.indices[row].tolist() == expected_indices
        torch.testing.assert_close(result.scores[row], torch.tensor(expected_scores, dtype=torch.float64))


def test_nearest_ties_by_lower_index():
    heads = random_heads()
    for image in (12, 3, 8):
        heads[image, 0, 1] = heads[0, 0, 1]
    result = nearest_images(heads, LAYERS, 10, 1, query=0, k=3)
    assert result.indices[0].tolist() == [3, 8, 12]


def test_nearest_vector_query_equals_index_query():
    heads, _ = planted_cluster()
    by_index = nearest_images(heads, LAYERS, 11, 1, query=5, k=6, exclude_query=False)
    by_vector = nearest_images(heads, LAYERS, 11, 1, query=heads[5, 1, 1] * 3, k=6)
    assert torch.equal(by_vector.indices, by_index.indices)
    torch.testing.assert_close(by_vector.scores, by_index.scores)


def test_nearest_query_forms_agree():
    heads = random_heads()
    as_int = nearest_images(heads, LAYERS, 10, 0, query=4, k=5)
    as_tensor = nearest_images(heads, LAYERS, 10, 0, query=torch.tensor(4), k=5)
    as_list = nearest_images(heads, LAYERS, 10, 0, query=[4, 6], k=5)
    as_matrix = nearest_images(heads, LAYERS, 10, 0, query=heads[[4, 6], 0, 0], k=6)
    assert torch.equal(as_int.indices, as_tensor.indices)
    assert torch.equal(as_int.indices[0], as_list.indices[0])
    assert as_list.indices.shape == (2, 5)
    assert as_matrix.indices[:, 0].tolist() == [4, 6]


def test_nearest_for_heads_sums_contributions():
    """A cluster hidden in each head's noise but visible in the sum of two heads."""
    heads = random_heads(seed=9)
    generator = torch.Generator().manual_seed(10)
    direction = 2 * F.normalize(torch.randn(D_EMBED, generator=generator), dim=0)
    members = [1, 6, 14]
    for image in members:
        noise = 5 * torch.randn(D_EMBED, generator=generator)
        heads[image, 0, 1] = direction + noise
        heads[image, 1, 2] = -noise + 0.05 * torch.randn(D_EMBED, generator=generator)

    result = nearest_images_for_heads(heads, LAYERS, [(10, 1), (11, 2)], query=6, k=2)
    single = nearest_images(heads, LAYERS, 10, 1, query=6, k=2)

    assert sorted(result.indices[0].tolist()) == [1, 14]
    assert sorted(single.indices[0].tolist()) != [1, 14]


def test_nearest_for_heads_matches_brute_force():
    heads = random_heads(seed=11, dtype=torch.float64)
    pairs = [(11, 0), (10, 2), (11, 2)]
    result = nearest_images_for_heads(heads, LAYERS, pairs, query=2, k=7)

    summed = heads[:, 1, 0] + heads[:, 0, 2] + heads[:, 1, 2]
    scores = [cosine(row, summed[2]) for row in summed]
    expected_indices, expected_scores = brute_force_ranking(scores, 7, skip=2)
    assert result.indices[0].tolist() == expected_indices
    torch.testing.assert_close(result.scores[0], torch.tensor(expected_scores, dtype=torch.float64))


def test_nearest_single_head_equals_for_heads():
    heads = random_heads()
    single = nearest_images(heads, LAYERS, 11, 2, query=7, k=4)
    many = nearest_images_for_heads(heads, LAYERS, [(11, 2)], query=7, k=4)
    assert torch.equal(single.indices, many.indices)
    assert torch.equal(single.scores, many.scores)


# ---------------------------------------------------------------------------
# On a real decomposition


def test_retrieval_on_tiny_model_decomposition():
    model = HookedViT.from_open_clip_model(tiny_clip(), dtype=torch.float64)
    images = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    heads = decompose(model, images).heads
    n_layers = model.cfg.n_layers
    assert heads.shape == (6, n_layers, model.cfg.n_heads, model.cfg.d_embed)

    layer, head = n_layers - 1, 1
    text = heads[4, layer, head].unsqueeze(0)
    by_text = top_images_for_texts(heads, range(n_layers), layer, head, text, k=3, normalize=True)
    assert by_text.indices[0, 0] == 4
    assert float(by_text.scores[0, 0]) == pytest.approx(1.0, abs=1e-12)

    neighbours = nearest_images(heads, range(n_layers), layer, head, query=4, k=5)
    contributions = heads[:, layer, head]
    scores = [cosine(row, contributions[4]) for row in contributions]
    assert neighbours.indices[0].tolist() == brute_force_ranking(scores, 5, skip=4)[0]

    last_two = heads[:, -2:]
    stored = nearest_images(last_two, [n_layers - 2, n_layers - 1], layer, head, query=4, k=5)
    assert torch.equal(stored.indices, neighbours.indices)
    assert torch.equal(stored.scores, neighbours.scores)


# ---------------------------------------------------------------------------
# save_head_outputs / load_head_outputs


def test_save_load_round_trip(tmp_path):
    heads = random_heads()
    ids = [f"image_{i:03d}.jpg" for i in range(N_IMAGES)]
    path = tmp_path / "nested" / "heads.pt"

    written = save_head_outputs(path, heads, LAYERS, ids)
    loaded = load_head_outputs(path, map_location=torch.device("cpu"))

    assert written == path
    assert torch.equal(loaded.head_outputs, heads)
    assert loaded.layers == list(LAYERS)
    assert loaded.image_ids == ids
    assert os.listdir(path.parent) == ["heads.pt"]

    texts = random_texts()
    assert torch.equal(
        top_images_for_texts(loaded.head_outputs, loaded.layers, 11, 1, texts, k=3).indices,
        top_images_for_texts(heads, LAYERS, 11, 1, texts, k=3).indices,
    )


def test_save_slice_stores_only_slice(tmp_path):
    heads = torch.randn(N_IMAGES, 12, N_HEADS, D_EMBED)
    view = heads[:, -2:]
    path = tmp_path / "heads.pt"

    save_head_outputs(path, view, [10, 11], list(range(N_IMAGES)))
    loaded = load_head_outputs(path)

    assert torch.equal(loaded.head_outputs, view)
    assert loaded.head_outputs.untyped_storage().nbytes() == view.numel() * view.element_size()
    assert loaded.image_ids == list(range(N_IMAGES))


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "heads.pt"
    save_head_outputs(path, random_heads(seed=1), LAYERS, list(range(N_IMAGES)))
    second = random_heads(seed=2)
    save_head_outputs(path, second, LAYERS, list(range(N_IMAGES)))
    assert torch.equal(load_head_outputs(path).head_outputs, second)
    assert os.listdir(tmp_path) == ["heads.pt"]


def test_save_crash_keeps_previous_file(tmp_path):
    path = tmp_path / "heads.pt"
    first = random_heads(seed=1)
    save_head_outputs(path, first, LAYERS, list(range(N_IMAGES)))

    def write_half_then_fail(data, file):
        file.write(b"PK\x03\x04 partial")
        raise OSError("No space left on device")

    with mock.patch.object(retrieval.torch, "save", side_effect=write_half_then_fail):
        with pytest.raises(OSError, match="No space left"):
            save_head_outputs(path, random_heads(seed=2), LAYERS, list(range(N_IMAGES)))

    assert torch.equal(load_head_outputs(path).head_outputs, first)
    assert os.listdir(tmp_path) == ["heads.pt"]


def test_load_garbage_file_names_path(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        load_head_outputs(path)
    assert "weights_only=False" not in str(error.value)


def test_load_truncated_file_names_path(tmp_path):
    path = tmp_path / "heads.pt"
    save_head_outputs(path, random_heads(), LAYERS, list(range(N_IMAGES)))
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_head_outputs(path)


def test_load_empty_file_names_path(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_head_outputs(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda data: data.pop("image_ids"), r"missing keys \['image_ids'\]"),
        (lambda data: data.update(format="something else"), "format 'something else'"),
        (lambda data: data.update(version=99), "version 99"),
        (lambda data: data.update(layers=[10]), "layers lists 1 layers"),
        (lambda data: data.update(image_ids=[0, 1]), "image_ids has 2 entries"),
        (lambda data: data.update(head_outputs=torch.zeros(3, 8)), "expected 4 axes"),
    ],
)
def test_load_inconsistent_file(tmp_path, change, message):
    data = {
        "format": retrieval.FILE_FORMAT,
        "version": retrieval.FILE_VERSION,
        "head_outputs": random_heads(),
        "layers": list(LAYERS),
        "image_ids": list(range(N_IMAGES)),
    }
    change(data)
    path = tmp_path / "heads.pt"
    torch.save(data, path)
    with pytest.raises(ValueError, match=message) as error:
        load_head_outputs(path)
    assert str(path) in str(error.value)


def test_load_not_a_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match=r"not a dict"):
        load_head_outputs(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_head_outputs(tmp_path / "missing.pt")


def test_load_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a regular file"):
        load_head_outputs(tmp_path)


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"path": 3}, TypeError, "path must be a str"),
        ({"image_ids": list(range(N_IMAGES - 1))}, ValueError, "19 entries, but head_outputs has 20 images"),
        ({"image_ids": [0] * N_IMAGES}, ValueError, r"repeats \[0\]"),
        ({"image_ids": [1.5] * N_IMAGES}, TypeError, r"image_ids\[0\] must be an int"),
        ({"image_ids": "abc"}, TypeError, "image_ids must be a sequence"),
        ({"layers": [10]}, ValueError, "layers lists 1 layers"),
        ({"head_outputs": torch.zeros(N_IMAGES, 8)}, ValueError, "expected 4 axes"),
    ],
)
def test_save_rejects_bad_arguments(tmp_path, arguments, error, message):
    call = {
        "path": tmp_path / "heads.pt",
        "head_outputs": random_heads(),
        "layers": LAYERS,
        "image_ids": list(range(N_IMAGES)),
    }
    call.update(arguments)
    with pytest.raises(error, match=message):
        save_head_outputs(**call)
    assert os.listdir(tmp_path) == []


def test_save_rejects_nan(tmp_path):
    heads = random_heads()
    heads[6, 1, 0, 3] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values at image indices \[6\]"):
        save_head_outputs(tmp_path / "heads.pt", heads, LAYERS, list(range(N_IMAGES)))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Input checks shared by the retrieval functions


def call_top_images(**changes):
    arguments = {
        "head_outputs": random_heads(),
        "layers": LAYERS,
        "layer": 11,
        "head": 1,
        "text_embeddings": random_texts(),
        "k": 3,
    }
    arguments.update(changes)
    return top_images_for_texts(**arguments)


def call_nearest(**changes):
    arguments = {"head_outputs": random_heads(), "layers": LAYERS, "layer": 11, "head": 1, "query": 2, "k": 3}
    arguments.update(changes)
    return nearest_images(**arguments)


def with_nan(image: int, layer_position: int, head: int) -> torch.Tensor:
    heads = random_heads()
    heads[image, layer_position, head, 0] = float("nan")
    return heads


COMMON_BAD_ARGUMENTS = [
    ({"head_outputs": [[1.0]]}, TypeError, "head_outputs must be a torch.Tensor"),
    ({"head_outputs": torch.zeros(N_IMAGES, N_HEADS, D_EMBED)}, ValueError, r"shape \(20, 3, 8\), expected 4 axes"),
    ({"head_outputs": torch.zeros(N_IMAGES, 2, N_HEADS, D_EMBED, dtype=torch.int64)}, TypeError, "floating-point"),
    ({"head_outputs": torch.zeros(0, 2, N_HEADS, D_EMBED)}, ValueError, "empty axis"),
    ({"layers": [10]}, ValueError, r"layers lists 1 layers \[10\], but head_outputs has 2 along axis 1"),
    ({"layers": [10, 10]}, ValueError, r"lists \[10\] more than once"),
    ({"layers": [-2, -1]}, ValueError, "negative indices"),
    ({"layers": [10.0, 11.0]}, TypeError, r"layers\[0\] must be an int"),
    ({"layers": 11}, TypeError, "layers must be a sequence of ints"),
    ({"layer": 9}, ValueError, r"layer 9 is not among the stored layers \[10, 11\]"),
    ({"layer": 11.0}, TypeError, "layer must be an int"),
    ({"head": 3}, IndexError, r"head 3 is out of range; head_outputs has 3 heads per layer \(0..2\)"),
    ({"head": -1}, IndexError, "head -1 is out of range"),
    ({"head": True}, TypeError, "head must be an int, got the bool"),
    ({"k": 0}, ValueError, "k=0 is invalid"),
    ({"k": -2}, ValueError, "k=-2 is invalid"),
    ({"k": 2.5}, TypeError, "k must be an int"),
    ({"head_outputs": with_nan(5, 1, 1)}, ValueError, r"NaN or infinite values for \(layer, head\) \[\(11, 1\)\] at image indices \[5\]"),
]


@pytest.mark.parametrize("changes, error, message", COMMON_BAD_ARGUMENTS)
def test_top_images_rejects_bad_arguments(changes, error, message):
    with pytest.raises(error, match=message):
        call_top_images(**changes)


@pytest.mark.parametrize("changes, error, message", COMMON_BAD_ARGUMENTS)
def test_nearest_rejects_bad_arguments(changes, error, message):
    with pytest.raises(error, match=message):
        call_nearest(**changes)


def test_nan_in_unused_head_is_allowed():
    heads = with_nan(5, 0, 0)
    assert call_top_images(head_outputs=heads).indices.shape == (4, 3)
    assert call_nearest(head_outputs=heads).indices.shape == (1, 3)


def test_top_images_k_too_large_names_count():
    with pytest.raises(ValueError, match=r"k=21 is invalid: there are 20 images in head_outputs. Pass k between 1 and 20"):
        call_top_images(k=21)


@pytest.mark.parametrize(
    "text_embeddings, error, message",
    [
        (torch.zeros(2, 5), ValueError, "text_embeddings has width 5, but head_outputs has d_embed 8"),
        (torch.zeros(8), ValueError, r"shape \(8,\), expected \[n_texts, 8\].*unsqueeze\(0\)"),
        (torch.zeros(0, 8), ValueError, "text_embeddings has no rows"),
        (torch.zeros(2, 8, dtype=torch.int64), TypeError, "floating-point"),
        ([[0.0] * 8], TypeError, "text_embeddings must be a torch.Tensor"),
        (torch.tensor([[float("nan")] * 8, [1.0] * 8]), ValueError, r"rows \[0\] contain NaN"),
        (torch.tensor([[1.0] * 8, [float("inf")] * 8]), ValueError, r"rows \[1\] contain NaN or infinite"),
    ],
)
def test_top_images_rejects_bad_texts(text_embeddings, error, message):
    with pytest.raises(error, match=message):
        call_top_images(text_embeddings=text_embeddings)


def test_top_images_cosine_rejects_zero_text():
    texts = random_texts(3)
    texts[1] = 0
    with pytest.raises(ValueError, match=r"rows \[1\] have zero norm"):
        call_top_images(text_embeddings=texts, normalize=True)
    assert call_top_images(text_embeddings=texts, normalize=False).indices.shape == (3, 3)


@pytest.mark.parametrize(
    "query, error, message",
    [
        (20, IndexError, r"query image indices \[20\] are out of range; head_outputs has 20 images \(0..19\)"),
        (-1, IndexError, r"indices \[-1\] are out of range"),
        ([1, 25], IndexError, r"\[25\] are out of range"),
        ([], ValueError, "query is an empty list"),
        (2.0, TypeError, "query must be an int"),
        (True, TypeError, "query must be an int, got the bool"),
        ("2", TypeError, "got the string '2'"),
        ([1, "2"], TypeError, r"query\[1\] must be an int"),
        (torch.zeros(5), ValueError, "query vectors have width 5, but head_outputs has d_embed 8"),
        (torch.zeros(2, 2, 8), ValueError, r"expected \[8\] or \[n_queries, 8\]"),
        (torch.zeros(0, 8), ValueError, "query has no rows"),
        (torch.full((8,), float("nan")), ValueError, r"query rows \[0\] contain NaN"),
        (torch.zeros(8), ValueError, r"query rows \[0\] have zero norm"),
        (torch.tensor([True]), TypeError, "torch.bool tensor"),
        (torch.zeros(2, 2, dtype=torch.int64), TypeError, "1-D integer tensor"),
    ],
)
def test_nearest_rejects_bad_query(query, error, message):
    with pytest.raises(error, match=message):
        call_nearest(query=query)


def test_nearest_rejects_zero_query_image():
    heads = random_heads()
    heads[2, 1, 1] = 0
    with pytest.raises(ValueError, match=r"images \[2\] have a zero contribution"):
        call_nearest(head_outputs=heads)
    assert call_nearest(head_outputs=heads, normalize=False).indices.shape == (1, 3)


@pytest.mark.parametrize(
    "heads, error, message",
    [
        ([], ValueError, "heads is empty"),
        ([(10, 1), (10, 1)], ValueError, r"lists \[\(10, 1\)\] more than once"),
        ([(10,)], ValueError, r"heads\[0\] = \(10,\) is not a \(layer, head\) pair"),
        ([(12, 0)], ValueError, "layer 12 is not among the stored layers"),
        ([(10, 5)], IndexError, "head 5 is out of range"),
        ((10, 1), ValueError, r"heads\[0\] = 10 is not a \(layer, head\) pair"),
        ("10,1", TypeError, "heads must be a sequence of"),
    ],
)
def test_nearest_for_heads_rejects_bad_heads(heads, error, message):
    with pytest.raises(error, match=message):
        nearest_images_for_heads(random_heads(), LAYERS, heads, query=0, k=2)


def test_layers_accepts_range_and_tensor():
    heads = random_heads()
    texts = random_texts()
    expected = top_images_for_texts(heads, [10, 11], 11, 0, texts, k=2)
    for layers in (range(10, 12), (10, 11), torch.tensor([10, 11])):
        result = top_images_for_texts(heads, layers, 11, 0, texts, k=2)
        assert torch.equal(result.indices, expected.indices)


def test_retrieval_does_not_modify_inputs():
    heads = random_heads()
    texts = random_texts()
    heads_copy, texts_copy = heads.clone(), texts.clone()
    top_images_for_texts(heads, LAYERS, 10, 0, texts, k=3, normalize=True)
    nearest_images_for_heads(heads, LAYERS, [(10, 0), (11, 1)], query=[0, 1], k=3)
    nearest_images(heads, LAYERS, 10, 0, query=heads[0, 0, 0], k=3)
    assert torch.equal(heads, heads_copy)
    assert torch.equal(texts, texts_copy)


def test_save_accepts_path_string(tmp_path):
    path = str(Path(tmp_path) / "heads.pt")
    save_head_outputs(path, random_heads(), LAYERS, [str(i) for i in range(N_IMAGES)])
    assert load_head_outputs(path).image_ids[3] == "3"
