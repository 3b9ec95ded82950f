"""The completeness curve: heads projected onto their TEXTSPAN bases, every other term mean-ablated."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_clip

from hooked_clip import HookedViT
from textspan.ablation import Ablation, TermMeans, mean_ablate, zero_shot_accuracy
from textspan.completeness import completeness, projected_embeddings
from textspan.decomposition import decompose
from textspan.text_span import text_span_heads


@pytest.fixture(scope="module")
def setup():
    model = HookedViT.from_open_clip_model(tiny_clip(), dtype=torch.float64)
    generator = torch.Generator().manual_seed(5)
    images = torch.randn(40, 3, 32, 32, generator=generator, dtype=torch.float64)
    decomposition = decompose(model, images)
    means = TermMeans.from_decompositions([decomposition])
    classifier = torch.nn.functional.normalize(torch.randn(24, 5, generator=generator, dtype=torch.float64), dim=0)
    labels = (decomposition.total() @ classifier).argmax(dim=1)
    pool = torch.nn.functional.normalize(torch.randn(60, 24, generator=generator, dtype=torch.float64), dim=-1)
    return model, decomposition, means, classifier, labels, pool


def test_full_span_restores_heads(setup):
    _, decomposition, means, _, _, pool = setup
    spans = text_span_heads(decomposition.heads, pool, 24, [0, 1, 2], progress=False)
    projected = projected_embeddings(decomposition, means, spans, 24)
    expected = mean_ablate(decomposition, means, Ablation(mlps=True, embed=True, attention_layers=[]))
    bias_deviation = (decomposition.attn_bias - means.attn_bias).sum(dim=1)
    torch.testing.assert_close(projected, expected - bias_deviation)


def test_zero_texts_mean_ablates_heads(setup):
    _, decomposition, means, _, _, pool = setup
    spans = text_span_heads(decomposition.heads[:, [2]], pool, 3, [2], progress=False)
    projected = projected_embeddings(decomposition, means, spans, 0)
    everything = Ablation(attention_layers=range(3), mlps=True, embed=True)
    torch.testing.assert_close(projected, mean_ablate(decomposition, means, everything))


def test_curve_table(setup):
    _, decomposition, means, classifier, labels, pool = setup
    random_pool = torch.nn.functional.normalize(torch.randn(60, 24, dtype=torch.float64), dim=-1)
    result = completeness(
        decomposition, means, classifier, labels,
        pools={"pool": (pool, [f"t{i}" for i in range(60)]), "random": (random_pool, None)},
        layers=[-1], counts=[2, 6, 10], progress=False,
    )
    assert result.counts == [2, 6, 10]
    assert set(result.accuracy) == {"pool", "random"}
    spans = result.spans["pool"]
    expected = zero_shot_accuracy(projected_embeddings(decomposition, means, spans, 6), classifier, labels)
    assert result.accuracy["pool"][1] == expected
    assert "| pool |" in result.to_markdown()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"pools": {}}, "pools is empty"), ({"counts": [0]}, "counts"), ({"layers": [5]}, "Layer 5")],
)
def test_bad_arguments_rejected(setup, arguments, message):
    _, decomposition, means, classifier, labels, pool = setup
    call = {"pools": {"pool": (pool, None)}, "layers": [-1], "counts": [2], "progress": False} | arguments
    with pytest.raises(ValueError, match=message):
        completeness(decomposition, means, classifier, labels, **call)


def test_count_larger_than_pool_rejected(setup):
    _, decomposition, means, classifier, labels, pool = setup
    with pytest.raises(ValueError, match="larger than the pool"):
        completeness(decomposition, means, classifier, labels, {"small": (pool[:5], None)}, layers=[-1],
                     counts=[10], progress=False)
