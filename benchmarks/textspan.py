"""Speed of TEXTSPAN: the covariance algorithm against a literal Algorithm 1, in one process.

Run: .venv/bin/python benchmarks/textspan.py [--images 10000] [--texts 3498] [--width 768]
     [--per-head 60] [--heads 64] [--plain-steps 60]

Synthetic head outputs (K images, width d, with a decaying spectrum) and M random unit text
directions, as in the ImageNet setting of Gandelsman et al. (2024): K = 10,000 images here,
M = 3,498 texts, d = 768, 60 texts per head. The script prints the time of `text_span` on one
head and of the plain implementation in float64 and in float32 on the same head. For each plain
run it also prints the speed-up and whether it chose the same texts. Last come the time of
`text_span_heads` on 64 heads and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


import _common  # noqa: F401  (before textspan, see _common.py)
from _common import cpu_model_name
import torch

from textspan.text_span import text_span, text_span_heads, text_span_plain


def synthetic_head_outputs(n_images: int, width: int, generator: torch.Generator) -> torch.Tensor:
    spectrum = torch.logspace(0, -3, width)
    basis, _ = torch.linalg.qr(torch.randn(width, width, generator=generator))
    coefficients = torch.randn(n_images, width, generator=generator) * spectrum.sqrt()
    return coefficients @ basis.T + torch.randn(width, generator=generator)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000, help="K, images per head (default: %(default)s)")
    parser.add_argument("--texts", type=int, default=3_498, help="M, candidate texts (default: %(default)s)")
    parser.add_argument("--width", type=int, default=768, help="d, embedding width (default: %(default)s)")
    parser.add_argument("--per-head", type=int, default=60, help="texts chosen per head (default: %(default)s)")
    parser.add_argument("--heads", type=int, default=64, help="heads for the batched run (default: %(default)s)")
    parser.add_argument("--plain-steps", type=int, default=60,
                        help="steps of the plain implementation to time; fewer are scaled up linearly "
                             "(default: %(default)s, the full run)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    outputs = synthetic_head_outputs(args.images, args.width, generator)
    texts = torch.nn.functional.normalize(torch.randn(args.texts, args.width, generator=generator), dim=-1)

    start = time.perf_counter()
    fast = text_span(outputs, texts, args.per_head, reconstruct=False)
    fast_seconds = time.perf_counter() - start

    plain_steps = min(args.plain_steps, args.per_head)
    plain_seconds, same_selection = {}, {}
    for dtype in (torch.float64, torch.float32):
        name = str(dtype).removeprefix("torch.")
        start = time.perf_counter()
        plain = text_span_plain(outputs, texts, plain_steps, dtype=dtype)
        plain_seconds[name] = (time.perf_counter() - start) * args.per_head / plain_steps
        same_selection[name] = plain == fast.indices[:plain_steps]

    layers = args.heads // 16 or 1
    heads_per_layer = args.heads // layers
    many = outputs[:, None, None, :].expand(-1, layers, heads_per_layer, -1).clone()
    many += 0.01 * torch.randn(many.shape, generator=generator)
    start = time.perf_counter()
    text_span_heads(many, texts, args.per_head, list(range(layers)), progress=False)
    heads_seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    results = {
        "images": args.images, "texts": args.texts, "width": args.width, "per_head": args.per_head,
        "plain_seconds": plain_seconds, "plain_steps_timed": plain_steps, "fast_seconds": fast_seconds,
        "speedup": {name: seconds / fast_seconds for name, seconds in plain_seconds.items()},
        "same_selection": same_selection,
        "heads": layers * heads_per_layer, "heads_seconds": heads_seconds, "peak_rss_mib": peak_mib,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_model_name() or "unknown",
    }
    print(f"CPU: {results['cpu']}, {results['threads']} threads, torch {results['torch']}")
    print(f"K={args.images} images, M={args.texts} texts, d={args.width}, {args.per_head} texts per head")
    scaled = "" if plain_steps == args.per_head else f" (timed {plain_steps} steps, scaled)"
    print(f"text_span, one head:                  {fast_seconds:8.2f} s")
    for name, seconds in plain_seconds.items():
        print(f"plain Algorithm 1 in {name}, one head: {seconds:8.2f} s{scaled}   "
              f"speed-up {results['speedup'][name]:6.1f} x (target >= 50)   same selection: {same_selection[name]}")
    print(f"text_span_heads, {results['heads']} heads:  {heads_seconds:8.2f} s   (target < 60 s)")
    print(f"peak resident memory:        {peak_mib:8.0f} MiB")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
