"""Label the heads of the last layer with TEXTSPAN over the shipped photos, and print a Markdown table.

Run: python examples/label_heads.py [--model ViT-B-16] [--pretrained TAG | random | PATH] [--pool-size 400]

Eight photos span at most seven directions per head, so this shows the mechanics only. For labels
that mean something, decompose a dataset (`textspan decompose`) and run TEXTSPAN on its head outputs.
"""

from __future__ import annotations

import argparse

import textspan
from hooked_clip import HookedCLIP
from textspan.images import list_images, load_images, shipped_photos_dir
from textspan.text_span import text_spans_to_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--pretrained", default="laion2b_s34b_b88k", help="tag, checkpoint path, or 'random'")
    parser.add_argument("--pool-size", type=int, default=400, help="every n-th description of the built-in pool is used")
    args = parser.parse_args()

    model = HookedCLIP.from_open_clip(args.model, None if args.pretrained == "random" else args.pretrained)
    images, _ = load_images(list_images(shipped_photos_dir()), model.preprocess)
    pool = textspan.general_pool()
    pool = pool[:: max(1, len(pool) // args.pool_size)]
    text_embeddings = model.encode_text(pool, normalize=True)

    last = model.visual.cfg.n_layers - 1
    decomposition = textspan.decompose(model.visual, images)
    spans = textspan.text_span_heads(decomposition.heads[:, [last]], text_embeddings, 3, [last], texts=pool,
                                     progress=False)
    print(text_spans_to_markdown(spans))


if __name__ == "__main__":
    main()
