"""Mean-ablation of direct effects, zero-shot accuracy, and ablation hooks that re-run the model."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_clip

from hooked_clip import HookedViT
from hooked_clip.hooks import activation_means, head_ablation_hook, mean_ablation_hook
from textspan.ablation import (
    Ablation,
    TermMeans,
    ablation_report,
    accumulated_ablation_curve,
    mean_ablate,
    zero_shot_accuracy,
)
from textspan.decomposition import decompose


@pytest.fixture(scope="module")
def setup():
    model = HookedViT.from_open_clip_model(tiny_clip(), dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    reference = torch.randn(12, 3, 32, 32, generator=generator, dtype=torch.float64)
    evaluated = torch.randn(6, 3, 32, 32, generator=generator, dtype=torch.float64)
    layers = range(model.cfg.n_layers)
    means = TermMeans.from_decompositions(
        [decompose(model, reference[:5], token_layers=layers), decompose(model, reference[5:], token_layers=layers)]
    )
    return model, reference, evaluated, means, decompose(model, evaluated, token_layers=layers)


def test_ablating_nothing_is_exact(setup):
    _, _, _, means, decomposition = setup
    assert torch.equal(mean_ablate(decomposition, means, Ablation()), decomposition.total())


def test_means_independent_of_batching(setup):
    model, reference, _, means, _ = setup
    reversed_order = reference.flip(0)
    other = TermMeans.from_decompositions(
        [decompose(model, reversed_order[i : i + 4], token_layers=range(3)) for i in range(0, 12, 4)]
    )
    torch.testing.assert_close(other.heads, means.heads, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(other.class_token, means.class_token, rtol=1e-12, atol=1e-12)
    assert other.n_images == 12


def test_ablated_head_takes_mean(setup):
    _, _, _, means, decomposition = setup
    ablated = mean_ablate(decomposition, means, Ablation(heads=[(2, 1)]))
    expected = decomposition.total() - decomposition.heads[:, 2, 1] + means.heads[2, 1]
    torch.testing.assert_close(ablated, expected)


def test_layer_and_head_ablated_once(setup):
    _, _, _, means, decomposition = setup
    both = mean_ablate(decomposition, means, Ablation(attention_layers=[1], heads=[(1, 0)]))
    layer_only = mean_ablate(decomposition, means, Ablation(attention_layers=[1]))
    torch.testing.assert_close(both, layer_only)


def test_ablating_everything_gives_mean(setup):
    _, _, _, means, decomposition = setup
    everything = Ablation(attention_layers=range(3), mlps=True, embed=True)
    ablated = mean_ablate(decomposition, means, everything)
    expected = means.embed + means.heads.sum((0, 1)) + means.attn_bias.sum(0) + means.mlps.sum(0) + means.ln_bias
    torch.testing.assert_close(ablated, expected.expand_as(ablated))


def test_class_token_ablation(setup):
    _, _, _, means, decomposition = setup
    ablated = mean_ablate(decomposition, means, Ablation(class_token=True))
    expected = decomposition.total() - decomposition.tokens()[:, 0] + means.class_token
    torch.testing.assert_close(ablated, expected)


def test_class_token_needs_all_layers(setup):
    model, _, evaluated, means, _ = setup
    partial = decompose(model, evaluated, token_layers=[2])
    with pytest.raises(ValueError, match="every layer"):
        mean_ablate(partial, means, Ablation(class_token=True))


def test_zero_shot_accuracy_counts():
    classifier = torch.eye(3)
    embeddings = torch.tensor([[1.0, 0.5, 0], [0, 2.0, 0.1], [0, 0.2, 1.0], [0.9, 0.1, 0]])
    assert zero_shot_accuracy(embeddings, classifier, [0, 1, 0, 0]) == 0.75
    assert zero_shot_accuracy(embeddings, classifier, [1, 1, 0, 1], top_k=2) == 0.75


def test_accuracy_independent_of_order():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(50, 8, generator=generator)
    classifier = torch.randn(8, 5, generator=generator)
    labels = torch.randint(0, 5, (50,), generator=generator)
    permutation = torch.randperm(50, generator=generator)
    assert zero_shot_accuracy(embeddings, classifier, labels) == zero_shot_accuracy(
        embeddings[permutation], classifier, labels[permutation]
    )


def test_curve_and_report(setup):
    _, _, _, means, decomposition = setup
    classifier = torch.nn.functional.normalize(torch.randn(24, 4, dtype=torch.float64), dim=0)
    labels = (decomposition.total() @ classifier).argmax(dim=1)
    curve = accumulated_ablation_curve(decomposition, means, classifier, labels)
    assert len(curve) == 4
    assert curve[0] == 1.0
    report = ablation_report(decomposition, means, classifier, labels)
    assert report["base"] == 1.0
    assert set(report) == {"base", "mlps_ablated", "mlps_and_class_token_ablated"}
    everything = mean_ablate(decomposition, means, Ablation(attention_layers=range(3)))
    assert curve[-1] == zero_shot_accuracy(everything, classifier, labels)


@pytest.mark.parametrize(
    ("ablation", "message"),
    [
        (Ablation(attention_layers=[5]), "attention_layers lists layers"),
        (Ablation(heads=[(0, 9)]), r"Head \(0, 9\)"),
        (Ablation(mlps=[-1]), "mlps lists layers"),
    ],
)
def test_bad_ablation_rejected(setup, ablation, message):
    _, _, _, means, decomposition = setup
    with pytest.raises(ValueError, match=message):
        mean_ablate(decomposition, means, ablation)


def test_means_of_other_model_rejected(setup):
    _, _, _, _, decomposition = setup
    other = HookedViT.from_open_clip_model(tiny_clip(layers=2), dtype=torch.float64)
    other_means = TermMeans.from_decompositions([decompose(other, torch.randn(2, 3, 32, 32, dtype=torch.float64))])
    with pytest.raises(ValueError, match="same model"):
        mean_ablate(decomposition, other_means, Ablation(mlps=True))


def test_empty_means_rejected():
    with pytest.raises(ValueError, match="No images"):
        TermMeans.from_decompositions([])


@pytest.mark.parametrize(
    ("labels", "message"),
    [([0, 1], "one label per image"), ([0, 1, 7], "integers in 0..2"), ([0.0, 1.0, 2.0], "integers")],
)
def test_bad_labels_rejected(labels, message):
    with pytest.raises(ValueError, match=message):
        zero_shot_accuracy(torch.randn(3, 4), torch.randn(4, 3), labels)


def test_empty_embeddings_rejected():
    with pytest.raises(ValueError, match="empty"):
        zero_shot_accuracy(torch.randn(0, 4), torch.randn(4, 3), [])


# -- hooks that re-run the model ----------------------------------------------------------------


def test_full_and_direct_ablation_differ(setup):
    model, reference, evaluated, means, decomposition = setup
    names = ["blocks.0.hook_mlp_out"]
    activation_mean = activation_means(model, [reference[:6], reference[6:]], names, progress=False)
    with torch.no_grad():
        full = model.run_with_hooks(evaluated, fwd_hooks=[(names[0], mean_ablation_hook(activation_mean[names[0]]))])
    direct = mean_ablate(decomposition, means, Ablation(mlps=[0]))
    assert (full - direct).abs().max() > 1e-6


def test_last_layer_full_equals_direct(setup):
    """Ablating the last MLP has no indirect path, apart from the ln_post statistics."""
    model, reference, evaluated, _, _ = setup
    name = "blocks.2.hook_mlp_out"
    mean = activation_means(model, [reference], [name], progress=False)[name]
    with torch.no_grad():
        full = model.run_with_hooks(evaluated, fwd_hooks=[(name, mean_ablation_hook(mean))])
        _, cache = model.run_with_cache(evaluated, names_filter=["blocks.2.hook_resid_post", name])
    resid = cache["blocks.2.hook_resid_post"][:, 0] - cache[name][:, 0] + mean[0]
    normalized = torch.nn.functional.layer_norm(resid, (resid.shape[-1],), model.ln_final.w, model.ln_final.b, model.cfg.eps)
    torch.testing.assert_close(full, normalized @ model.W_proj)


def test_head_zero_ablation_hook(setup):
    model, _, evaluated, _, _ = setup
    with torch.no_grad():
        through_z = model.run_with_hooks(evaluated, fwd_hooks=[("blocks.1.attn.hook_z", head_ablation_hook([0, 2]))])
        through_result = model.run_with_hooks(
            evaluated, fwd_hooks=[("blocks.1.attn.hook_result", head_ablation_hook([0, 2]))]
        )
        clean = model(evaluated)
    torch.testing.assert_close(through_z, through_result)
    assert (through_z - clean).abs().max() > 1e-6


def test_hook_rejects_bad_heads(setup):
    model, _, evaluated, _, _ = setup
    with pytest.raises(ValueError, match="Heads \\[7\\]"):
        model.run_with_hooks(evaluated, fwd_hooks=[("blocks.1.attn.hook_z", head_ablation_hook([7]))])


def test_activation_means_unknown_name(setup):
    model, reference, _, _, _ = setup
    with pytest.raises(KeyError, match="hook_mlp_out"):
        activation_means(model, [reference], ["blocks.0.hook_mlp_outt"], progress=False)
