"""TEXTSPAN options, results of many heads on disk, and their Markdown table."""

from __future__ import annotations

import json

import pytest
import torch

from textspan.text_span import (
    load_text_spans,
    save_text_spans,
    text_span,
    text_span_heads,
    text_span_plain,
    text_spans_to_markdown,
)


def random_problem(seed: int, n_images: int = 300, width: int = 40, n_candidates: int = 120):
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(width, width, generator=generator, dtype=torch.float64)
    outputs = torch.randn(n_images, width, generator=generator, dtype=torch.float64) @ mixing
    outputs += 3 * torch.randn(width, generator=generator, dtype=torch.float64)
    texts = torch.nn.functional.normalize(torch.randn(n_candidates, width, generator=generator, dtype=torch.float64), dim=-1)
    return outputs, texts


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("rank", [None, 12])
def test_uncentred_directions_match_plain(seed, rank):
    outputs, texts = random_problem(seed)
    fast = text_span(outputs, texts, 12, rank=rank, centre=False).indices
    assert fast == text_span_plain(outputs, texts, 12, rank=rank, centre=False)


def test_uncentred_projection_keeps_mean():
    outputs, texts = random_problem(0, width=8, n_candidates=40)
    centred = text_span(outputs, texts, 8, rank=2)
    uncentred = text_span(outputs, texts, 8, rank=2, centre=False)
    mean = outputs.mean(dim=0)
    kept_centred = (mean @ centred.projection).norm() / mean.norm()
    kept_uncentred = (mean @ uncentred.projection).norm() / mean.norm()
    assert kept_uncentred > kept_centred


def test_float32_input_matches_float64():
    outputs, texts = random_problem(4)
    assert text_span(outputs.float(), texts.float(), 10).indices == text_span(outputs, texts, 10).indices


def test_many_heads_round_trip(tmp_path):
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(50, 2, 3, 16, generator=generator)
    texts = torch.nn.functional.normalize(torch.randn(30, 16, generator=generator), dim=-1)
    labels = [f"text | {index}" for index in range(30)]
    results = text_span_heads(outputs, texts, 4, [10, 11], texts=labels, progress=False)
    path = tmp_path / "spans.json"
    save_text_spans(path, results, metadata={"model": "tiny"})

    loaded = load_text_spans(path)
    assert [(r.layer, r.head) for r in loaded] == [(10, 0), (10, 1), (10, 2), (11, 0), (11, 1), (11, 2)]
    assert [r.indices for r in loaded] == [r.indices for r in results]
    torch.testing.assert_close(loaded[4].basis, results[4].basis.double())
    assert json.loads(path.read_text())["metadata"] == {"model": "tiny"}
    assert not list(tmp_path.glob("*.tmp"))


def test_markdown_table_rows():
    generator = torch.Generator().manual_seed(1)
    outputs = torch.randn(40, 1, 2, 8, generator=generator)
    texts = torch.nn.functional.normalize(torch.randn(20, 8, generator=generator), dim=-1)
    results = text_span_heads(outputs, texts, 3, [7], texts=[f"t{i}|x" for i in range(20)], progress=False)
    table = text_spans_to_markdown(results, n_texts=2).splitlines()
    assert len(table) == 4
    assert table[2].startswith("| L7.H0 | ")
    assert table[2].count("<br>") == 1
    assert "\\|x" in table[2]


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"something": 1}')
    with pytest.raises(ValueError, match="not a TEXTSPAN results file"):
        load_text_spans(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_text_spans(tmp_path / "missing.json")


def test_heads_reject_wrong_layers():
    with pytest.raises(ValueError, match="layers lists 1 layers"):
        text_span_heads(torch.randn(10, 2, 2, 8), torch.randn(5, 8), 2, [3], progress=False)


def test_few_images_float32_matches_float64():
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(8, 256, generator=generator) @ torch.randn(256, 256, generator=generator)
    texts = torch.nn.functional.normalize(torch.randn(200, 256, generator=generator), dim=-1)
    single = text_span(outputs, texts, 5)
    double = text_span(outputs.double(), texts.double(), 5)
    assert single.indices == double.indices
    assert single.explained == pytest.approx(double.explained, rel=1e-5)


def test_low_rank_outputs_keep_their_span():
    """Head outputs lie in the d_head-dimensional image of W_O; rounding must not add directions."""
    generator = torch.Generator().manual_seed(3)
    basis = torch.linalg.qr(torch.randn(96, 8, generator=generator))[0]
    outputs = torch.randn(500, 8, generator=generator) @ basis.T
    texts = torch.nn.functional.normalize(torch.randn(60, 96, generator=generator), dim=-1)
    for dtype in (torch.float32, torch.bfloat16):
        result = text_span(outputs.to(dtype), texts.to(dtype), 8)
        assert result.explained[-1] == pytest.approx(1.0, abs=1e-2), dtype
