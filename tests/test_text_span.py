"""Tests for textspan.text_span (TEXTSPAN, Algorithm 1 of Gandelsman, Efros and Steinhardt, ICLR 2024).

`reference_text_span` below is Algorithm 1 as the paper writes it: `D = R C^T`, pick the row of
`D` with the largest variance, then project the chosen direction out of the head outputs `C`
and the candidates `R`. Before the loop it prepares `R` as `text_span` documents: the candidates
are projected onto the principal directions of the centred head outputs and, optionally,
rescaled to unit norm.
"""

from __future__ import annotations

import logging

import pytest
import torch

from textspan.text_span import TextSpanResult, text_span, text_span_heads

WIDTH = 16


def random_head_outputs(n_images: int = 50, width: int = WIDTH, seed: int = 0) -> torch.Tensor:
    """Return full-rank outputs with unequal variances along random directions and a non-zero mean."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(width, width, generator=generator, dtype=torch.float64)
    scales = torch.logspace(0, -1.5, width, dtype=torch.float64)
    offset = torch.randn(width, generator=generator, dtype=torch.float64)
    noise = torch.randn(n_images, width, generator=generator, dtype=torch.float64)
    return noise * scales @ mixing + offset


def random_candidates(n_candidates: int = 120, width: int = WIDTH, seed: int = 0) -> torch.Tensor:
    """Return random candidate embeddings whose norms vary from 0.5 to 2, so normalisation matters."""
    generator = torch.Generator().manual_seed(1000 + seed)
    candidates = torch.randn(n_candidates, width, generator=generator, dtype=torch.float64)
    norms = 0.5 + 1.5 * torch.rand(n_candidates, 1, generator=generator, dtype=torch.float64)
    return candidates / candidates.norm(dim=1, keepdim=True) * norms


def reference_text_span(
    outputs: torch.Tensor,
    candidates: torch.Tensor,
    n_texts: int,
    rank: int | None = None,
    normalize_texts: bool = False,
) -> list[int]:
    """Run Algorithm 1 step by step and return the chosen candidate indices."""
    C = outputs.to(torch.float64).clone()

    centred = C - C.mean(dim=0)
    _, singular_values, right_vectors = torch.linalg.svd(centred, full_matrices=False)
    significant = int((singular_values**2 > 1e-12 * singular_values[0] ** 2).sum())
    keep = significant if rank is None else min(rank, significant)
    principal = right_vectors[:keep].T  # [d, keep]
    R = candidates.to(torch.float64) @ principal @ principal.T
    if normalize_texts:
        R = R / R.norm(dim=1, keepdim=True)

    chosen = []
    for _ in range(n_texts):
        D = R @ C.T
        best = int(D.var(dim=1).argmax())
        chosen.append(best)
        direction = R[best].clone()
        C = C - torch.outer(C @ direction, direction) / (direction @ direction)
        R = R - torch.outer(R @ direction, direction) / (direction @ direction)
    return chosen


# -- planted directions ------------------------------------------------------------------------


@pytest.mark.parametrize("normalize_texts", [False, True])
def test_planted_directions_found_in_order(normalize_texts):
    generator = torch.Generator().manual_seed(7)
    n_images, width, n_candidates = 400, 32, 200
    pool = torch.randn(n_candidates, width, generator=generator)
    pool = pool / pool.norm(dim=1, keepdim=True)

    # Indices of the planted texts, in order of decreasing variance (9, 4, 1).
    planted = [121, 5, 37]
    coefficients = torch.randn(n_images, 3, generator=generator) * torch.tensor([3.0, 2.0, 1.0])
    noise = 0.01 * torch.randn(n_images, width, generator=generator)
    outputs = coefficients @ pool[planted] + noise

    result = text_span(outputs, pool, n_texts=3, normalize_texts=normalize_texts)
    assert result.indices == planted


# -- agreement with Algorithm 1 ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("rank", "normalize_texts", "n_texts"),
    [(None, False, 10), (None, True, 10), (6, False, 5), (6, True, 5)],
    ids=["all_directions", "all_directions_normalized", "rank_6", "rank_6_normalized"],
)
def test_matches_reference_algorithm(seed, rank, normalize_texts, n_texts):
    outputs = random_head_outputs(seed=seed)
    candidates = random_candidates(seed=seed)

    result = text_span(outputs, candidates, n_texts, rank=rank, normalize_texts=normalize_texts)
    expected = reference_text_span(outputs, candidates, n_texts, rank=rank, normalize_texts=normalize_texts)
    assert result.indices == expected


# -- explained variance, basis and reconstruction ---------------------------------------------


def test_explained_is_non_decreasing():
    result = text_span(random_head_outputs(), random_candidates(), n_texts=8)
    steps = list(zip(result.explained, result.explained[1:]))
    assert all(later >= earlier for earlier, later in steps), result.explained
    assert result.explained[-1] <= 1


def test_explained_reaches_one_at_full_width():
    result = text_span(random_head_outputs(), random_candidates(), n_texts=WIDTH)
    assert len(result.indices) == WIDTH
    assert abs(result.explained[-1] - 1) < 1e-8


def test_explained_matches_projected_variance():
    # explained[i] = mean_k |Proj_T(c_k - c_mean)|^2 / mean_k |c_k - c_mean|^2 for the first i + 1 texts.
    outputs = random_head_outputs()
    candidates = random_candidates()
    result = text_span(outputs, candidates, n_texts=6)

    centred = outputs - outputs.mean(dim=0)
    total_variance = float((centred**2).sum(dim=1).mean())
    for step in range(len(result.indices)):
        # The outputs are full rank, so the candidates' projection onto the principal
        # directions is the identity and the span is that of the original embeddings.
        chosen = candidates[result.indices[: step + 1]]
        orthonormal, _ = torch.linalg.qr(chosen.T)
        projected = centred @ orthonormal @ orthonormal.T
        explained = float((projected**2).sum(dim=1).mean()) / total_variance
        assert abs(result.explained[step] - explained) < 1e-10, step


def test_basis_is_orthonormal():
    result = text_span(random_head_outputs(), random_candidates(), n_texts=7)
    gram = result.basis @ result.basis.T
    assert result.basis.shape == (7, WIDTH)
    assert torch.allclose(gram, torch.eye(7, dtype=gram.dtype), atol=1e-10)


def test_reconstruction_is_projection():
    outputs = random_head_outputs()
    result = text_span(outputs, random_candidates(), n_texts=5)
    expected = outputs.to(torch.float64) @ result.projection
    assert result.reconstruction is not None
    assert torch.allclose(result.reconstruction, expected, rtol=1e-10, atol=1e-12)


# -- degenerate pools --------------------------------------------------------------------------


@pytest.mark.parametrize("normalize_texts", [False, True])
def test_duplicate_and_zero_never_chosen(normalize_texts):
    outputs = random_head_outputs()
    pool = random_candidates(n_candidates=20)
    pool = pool / pool.norm(dim=1, keepdim=True)
    top_direction = torch.linalg.svd(outputs - outputs.mean(dim=0), full_matrices=False).Vh[0]
    # Rows 3 and 7 are the same unit vector with the largest variance of any unit vector, so
    # the first step picks one of them (the lower index, by the documented tie rule).
    pool[3] = top_direction
    pool[7] = top_direction
    pool[12] = 0

    result = text_span(outputs, pool, n_texts=WIDTH, normalize_texts=normalize_texts)
    assert result.indices[0] == 3
    assert 7 not in result.indices
    assert 12 not in result.indices
    assert len(set(result.indices)) == len(result.indices)
    assert bool(torch.isfinite(result.basis).all())
    assert all(torch.isfinite(torch.tensor(result.variances)))
    assert all(torch.isfinite(torch.tensor(result.explained)))


def test_exhausted_pool_returns_fewer(caplog):
    distinct = random_candidates(n_candidates=4)
    pool = torch.cat([distinct, distinct])  # 8 rows spanning 4 dimensions
    texts = [f"text {index}" for index in range(8)]

    with caplog.at_level(logging.WARNING, logger="textspan.text_span"):
        result = text_span(random_head_outputs(), pool, n_texts=6, texts=texts)

    assert len(result.indices) == 4
    assert result.basis.shape == (4, WIDTH)
    assert len(result.texts) == 4
    assert len(result.explained) == 4
    assert any(record.levelno == logging.WARNING for record in caplog.records)


def test_low_rank_returns_fewer(caplog):
    with caplog.at_level(logging.WARNING, logger="textspan.text_span"):
        result = text_span(random_head_outputs(), random_candidates(), n_texts=5, rank=3)

    assert len(result.indices) == 3
    assert any(record.levelno == logging.WARNING for record in caplog.records)


# -- determinism and persistence ---------------------------------------------------------------


def test_repeated_runs_are_identical():
    outputs, candidates = random_head_outputs(), random_candidates()
    first = text_span(outputs, candidates, n_texts=6, normalize_texts=True)
    second = text_span(outputs, candidates, n_texts=6, normalize_texts=True)

    assert first.indices == second.indices
    assert first.variances == second.variances
    assert first.explained == second.explained
    assert torch.equal(first.basis, second.basis)


def test_save_load_round_trip(tmp_path):
    candidates = random_candidates()
    texts = [f"description {index}" for index in range(candidates.shape[0])]
    result = text_span(random_head_outputs(), candidates, n_texts=5, texts=texts)
    result.layer, result.head = 10, 3
    path = tmp_path / "span.json"

    result.save(path)
    loaded = TextSpanResult.load(path)

    assert loaded.indices == result.indices
    assert loaded.texts == result.texts
    assert loaded.variances == result.variances
    assert loaded.explained == result.explained
    assert (loaded.layer, loaded.head) == (10, 3)
    assert torch.equal(loaded.basis, result.basis.to(torch.float64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["span.json"]


# -- several heads -----------------------------------------------------------------------------


def test_heads_match_single_head_runs():
    n_images, layers, n_heads = 30, [4, 7], 3
    outputs = torch.stack(
        [
            torch.stack([random_head_outputs(n_images, seed=10 * slot + head) for head in range(n_heads)], dim=1)
            for slot in range(len(layers))
        ],
        dim=1,
    )  # [n_images, layer, head, d]
    candidates = random_candidates()
    texts = [f"description {index}" for index in range(candidates.shape[0])]

    results = text_span_heads(outputs, candidates, n_texts=4, layers=layers, texts=texts, progress=False)

    assert [(r.layer, r.head) for r in results] == [(4, 0), (4, 1), (4, 2), (7, 0), (7, 1), (7, 2)]
    for result in results:
        single = text_span(outputs[:, layers.index(result.layer), result.head], candidates, n_texts=4, texts=texts)
        assert result.indices == single.indices, (result.layer, result.head)
        assert result.texts == single.texts, (result.layer, result.head)


def test_heads_rejects_layer_count_mismatch():
    outputs = torch.randn(10, 2, 3, WIDTH, dtype=torch.float64)
    with pytest.raises(ValueError):
        text_span_heads(outputs, random_candidates(), n_texts=2, layers=[0, 1, 2], progress=False)


# -- input checks ------------------------------------------------------------------------------


def with_nan(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone()
    tensor[1, 2] = float("nan")
    return tensor


OUTPUTS = random_head_outputs(n_images=20)
CANDIDATES = random_candidates(n_candidates=30)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        pytest.param({"head_outputs": with_nan(OUTPUTS)}, ValueError, id="nan_outputs"),
        pytest.param({"text_embeddings": with_nan(CANDIDATES)}, ValueError, id="nan_candidates"),
        pytest.param({"text_embeddings": torch.randn(30, WIDTH + 1)}, ValueError, id="wrong_width"),
        pytest.param({"head_outputs": OUTPUTS[:1]}, ValueError, id="one_image"),
        pytest.param({"text_embeddings": torch.empty(0, WIDTH)}, ValueError, id="empty_pool"),
        pytest.param({"n_texts": 31}, ValueError, id="n_texts_above_pool"),
        pytest.param({"n_texts": 0}, ValueError, id="n_texts_zero"),
        pytest.param({"rank": 0}, ValueError, id="rank_zero"),
        pytest.param({"rank": WIDTH + 1}, ValueError, id="rank_above_width"),
        pytest.param({"head_outputs": OUTPUTS[:, None]}, ValueError, id="outputs_3d"),
        pytest.param({"head_outputs": OUTPUTS.tolist()}, TypeError, id="outputs_not_tensor"),
        pytest.param({"texts": ["only one"]}, ValueError, id="texts_length_mismatch"),
    ],
)
def test_rejects_bad_input(arguments, error):
    call = {"head_outputs": OUTPUTS, "text_embeddings": CANDIDATES, "n_texts": 3} | arguments
    with pytest.raises(error):
        text_span(**call)
