"""Time of `text_heatmap` for 100 texts against a plain forward pass, in one process.

Run: .venv/bin/python benchmarks/heatmaps.py [--model ViT-B-16] [--batch 8] [--texts 100] [--repeats 5]

Random weights, random 224 px images and random unit text directions on the CPU. Both calls are
warmed up once, then measured alternately `--repeats` times; the medians and their ratio are
printed (target: at most 1.3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import _common  # noqa: F401  (before textspan, see _common.py)
import open_clip
import torch

from hooked_clip import HookedViT
from textspan.heatmaps import text_heatmap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16", help="OpenCLIP model name (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=8, help="images per batch (default: %(default)s)")
    parser.add_argument("--texts", type=int, default=100, help="text directions (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds (default: %(default)s)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = HookedViT.from_open_clip_model(open_clip.create_model(args.model, pretrained=None))
    images = torch.randn(args.batch, 3, *model.cfg.image_size)
    texts = torch.nn.functional.normalize(torch.randn(args.texts, model.cfg.d_embed), dim=-1)

    def forward() -> None:
        with torch.inference_mode():
            model(images)

    def heatmaps() -> None:
        with torch.inference_mode():
            text_heatmap(model, images, texts)

    forward()
    heatmaps()
    times: dict[str, list[float]] = {"forward": [], "text_heatmap": []}
    for _ in range(args.repeats):
        for name, function in (("forward", forward), ("text_heatmap", heatmaps)):
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["text_heatmap"] / medians["forward"]
    print(f"{args.model}, batch {args.batch}, {args.texts} texts, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"forward:      {medians['forward']:.3f} s (median of {args.repeats})")
    print(f"text_heatmap: {medians['text_heatmap']:.3f} s")
    print(f"ratio:        {ratio:.2f}  (target <= 1.3: {'PASS' if ratio <= 1.3 else 'FAIL'})")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"medians": medians, "ratio": ratio, "times": times, **vars(args)}, file, indent=2)


if __name__ == "__main__":
    main()
