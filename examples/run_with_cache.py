"""Cache every activation of a CLIP image encoder on a photo and check the exact decomposition.

Run: python examples/run_with_cache.py [--model ViT-B-16] [--pretrained laion2b_s34b_b88k | random | PATH]
"""

from __future__ import annotations

import argparse

import torch
from PIL import Image

import textspan
from hooked_clip import HookedCLIP
from textspan.images import shipped_photos_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--pretrained", default="laion2b_s34b_b88k", help="tag, checkpoint path, or 'random'")
    args = parser.parse_args()

    model = HookedCLIP.from_open_clip(args.model, None if args.pretrained == "random" else args.pretrained)
    image = model.preprocess(Image.open(shipped_photos_dir() / "chelsea.jpg").convert("RGB")).unsqueeze(0)

    embedding, cache = model.run_with_cache(image)
    last = model.visual.cfg.n_layers - 1
    print(f"{len(cache)} activations cached")
    print(f"pattern of the last layer: {tuple(cache[f'blocks.{last}.attn.hook_pattern'].shape)}")
    print(f"class token attends to itself with weight {cache[f'blocks.{last}.attn.hook_pattern'][0, :, 0, 0].mean():.3f}")

    decomposition = textspan.decompose(model.visual, image)
    error = (decomposition.total() - embedding).norm() / embedding.norm()
    print(f"decomposition sums to the embedding within {error:.1e} (relative)")
    share = textspan.direct_effect_shares(decomposition)["attention"]
    top = torch.topk(share, 3)
    print("attention layers with the largest direct effect:", [f"L{i}: {v:.3f}" for v, i in zip(top.values, top.indices)])


if __name__ == "__main__":
    main()
