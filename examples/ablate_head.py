"""Compare a head's direct effect with its full effect (indirect paths included) on the shipped photos.

Run: python examples/ablate_head.py [--model ViT-B-16] [--pretrained TAG | random | PATH] [--layer -2] [--head 0]

Mean-ablating the head's direct effect changes only its own term of the decomposition. Running the
model with a hook that mean-ablates the head's output also changes every later layer.
"""

from __future__ import annotations

import argparse

import torch

import textspan
from hooked_clip import HookedCLIP
from hooked_clip.hooks import activation_means, head_ablation_hook
from textspan.ablation import Ablation
from textspan.images import list_images, load_images, shipped_photos_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--pretrained", default="laion2b_s34b_b88k", help="tag, checkpoint path, or 'random'")
    parser.add_argument("--layer", type=int, default=-2)
    parser.add_argument("--head", type=int, default=0)
    args = parser.parse_args()

    model = HookedCLIP.from_open_clip(args.model, None if args.pretrained == "random" else args.pretrained)
    images, _ = load_images(list_images(shipped_photos_dir()), model.preprocess)
    layer = args.layer % model.visual.cfg.n_layers

    decomposition = textspan.decompose(model.visual, images)
    means = textspan.TermMeans.from_decompositions([decomposition])
    direct = textspan.mean_ablate(decomposition, means, Ablation(heads=[(layer, args.head)]))

    name = f"blocks.{layer}.attn.hook_z"
    z_mean = activation_means(model.visual, [images], [name], progress=False)[name]
    with torch.no_grad():
        full = model.run_with_hooks(images, fwd_hooks=[(name, head_ablation_hook([args.head], mean=z_mean))])

    original = decomposition.total()
    cosine = torch.nn.functional.cosine_similarity
    print(f"L{layer}.H{args.head}, mean-ablated over {images.shape[0]} photos")
    print(f"direct effect only: cosine to the original embedding {cosine(direct, original).mean():.4f}")
    print(f"full effect:        cosine to the original embedding {cosine(full, original).mean():.4f}")


if __name__ == "__main__":
    main()
