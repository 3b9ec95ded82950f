"""Time HookedViT's forward pass against OpenCLIP's `encode_image` on the CPU.

The script builds one OpenCLIP model with random weights (`pretrained=None`), converts its
vision tower with `HookedViT.from_open_clip_model`, and times four variants on the same batch
of random images in one process:

- `encode_image`: OpenCLIP's `model.encode_image`, the baseline of every ratio;
- `hooked`: `HookedViT.forward` with no hooks attached (target: at most 1.10x the baseline);
- `cache_resid`: `run_with_cache` of the residual-stream hooks, the hook names that contain
  `hook_resid` (target: at most 1.15x);
- `cache_all`: `run_with_cache` of every hook point (target: at most 2.5x). The script also
  reports the memory that this cache occupies per batch.

Every call runs under `torch.inference_mode()`. Each variant gets one untimed warm-up call.
Then the variants run interleaved (A B C D A B C D ...) for `--repeats` rounds, and the table
shows the median wall-clock time of each, so that slow drift of the machine affects all
variants alike. The targets are reported as PASS or FAIL and not asserted. The exit status is
0 unless an error is raised.

Other processes on the machine still distort the ratios. To show this, the script prints the
load average and the share of the available CPU time that the process received, and `--json`
records every round's wall-clock time, process CPU time and minor page faults. Page faults
matter on Linux with glibc, where freed tensors can go back to the OS and the next call then
faults its memory in again.

Run it from the repository root:

    .venv/bin/python benchmarks/forward.py
    .venv/bin/python benchmarks/forward.py --repeats 9 --json out/forward.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from _common import cpu_model_name, format_bytes  # before textspan, see _common.py
import open_clip
import torch
from torch import Tensor
from transformer_lens import ActivationCache

from hooked_clip import HookedViT

try:
    import resource
except ImportError:  # not available on Windows
    resource = None

# Maximum ratio of each variant's median time to the median time of `encode_image`.
TARGETS = {"hooked": 1.10, "cache_resid": 1.15, "cache_all": 2.5}
LABELS = {
    "encode_image": "OpenCLIP encode_image",
    "hooked": "HookedViT forward, no hooks",
    "cache_resid": "run_with_cache, hook_resid* only",
    "cache_all": "run_with_cache, every hook",
}

# A variant returns the image embedding and, for the caching variants, the cache.
Variant = Callable[[], tuple[Tensor, ActivationCache | None]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16", help="OpenCLIP model name (default: ViT-B-16).")
    parser.add_argument("--batch", type=int, default=8, help="number of images per batch (default: 8).")
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="number of timed rounds, each of which runs every variant once (default: 5).",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and images (default: 0).")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH.")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


# -- environment ------------------------------------------------------------------------------



def load_average() -> list[float] | None:
    """Return the 1, 5 and 15 minute load averages, or None where the platform has none."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def minor_page_faults() -> int | None:
    """Return the minor page faults of this process so far, or None where `resource` is missing."""
    if resource is None:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# -- measurement ------------------------------------------------------------------------------


def cache_bytes(cache: ActivationCache) -> dict[str, int]:
    """Count the memory of a cache of activations in two ways.

    `logical_bytes` sums `numel() * element_size()` over the entries, which is the size of the
    cache if every entry were a separate contiguous tensor. `storage_bytes` sums the bytes of each
    distinct storage once, which is the memory that the cache keeps alive. The two differ where
    entries are views. `embed.hook_pos_embed` is an expanded view of one `[pos, d_model]` tensor,
    `blocks.{l}.hook_resid_pre` is the same tensor as the previous `hook_resid_post` (or
    `hook_embed`), and `hook_pooled` is a slice that keeps the whole `[batch, pos, d_model]`
    output of `ln_final` alive.
    """
    logical = 0
    storages: dict[int, int] = {}
    for tensor in cache.values():
        logical += tensor.numel() * tensor.element_size()
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return {"entries": len(cache), "logical_bytes": logical, "storage_bytes": sum(storages.values())}


def warm_up(variants: dict[str, Variant]) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Run every variant once, untimed.

    Returns the max absolute difference of each variant's output from `encode_image`'s, and the
    sizes of the caches that the caching variants return.
    """
    reference, _ = variants["encode_image"]()
    max_abs_diff = {}
    cache_sizes = {}
    for name, run in variants.items():
        output, cache = run()
        max_abs_diff[name] = (output - reference).abs().max().item()
        if cache is not None:
            cache_sizes[name] = cache_bytes(cache)
        del output, cache
    return max_abs_diff, cache_sizes


def time_rounds(variants: dict[str, Variant], repeats: int) -> dict[str, dict[str, list]]:
    """Run the variants interleaved for `repeats` rounds and record each call.

    Returns, per variant, the wall-clock seconds, process CPU seconds and minor page faults of
    every call (page faults are None where the platform cannot count them).
    """
    records = {name: {"wall_s": [], "cpu_s": [], "page_faults": []} for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            faults_start = minor_page_faults()
            cpu_start = time.process_time()
            start = time.perf_counter()
            output, cache = run()
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            faults_end = minor_page_faults()

            records[name]["wall_s"].append(wall)
            records[name]["cpu_s"].append(cpu)
            faults = None if faults_start is None else faults_end - faults_start
            records[name]["page_faults"].append(faults)

            # Freeing the output and cache is left out of the timing.
            del output, cache
    return records


def summarize(records: dict, max_abs_diff: dict, cache_sizes: dict) -> dict[str, dict]:
    """Compute each variant's median time, ratio to `encode_image` and verdict on its target."""
    baseline_times = records["encode_image"]["wall_s"]
    baseline = statistics.median(baseline_times)
    results = {}
    for name, record in records.items():
        median = statistics.median(record["wall_s"])
        ratio = median / baseline
        target = TARGETS.get(name)
        faults = [count for count in record["page_faults"] if count is not None]
        results[name] = {
            "label": LABELS[name],
            "median_s": median,
            "min_s": min(record["wall_s"]),
            "ratio": ratio,
            "target_ratio": target,
            "passed": None if target is None else ratio <= target,
            "median_page_faults": statistics.median(faults) if faults else None,
            "max_abs_diff_to_encode_image": max_abs_diff[name],
            "times_s": record["wall_s"],
            "process_cpu_times_s": record["cpu_s"],
            "page_faults": record["page_faults"],
            # Ratios within one round, where the variants ran back to back under similar load.
            "round_ratios": [value / base for value, base in zip(record["wall_s"], baseline_times)],
        }
        if name in cache_sizes:
            results[name]["cache"] = cache_sizes[name]
    return results


def cpu_share(records: dict, threads: int) -> float:
    """Return the median over all timed calls of process CPU time / (wall time * threads).

    Near 1 when the process had every thread's core to itself. Well under 1 when other
    processes took CPU time, which makes the timings unreliable.
    """
    return statistics.median(
        cpu / (wall * threads)
        for record in records.values()
        for cpu, wall in zip(record["cpu_s"], record["wall_s"])
    )


# -- output -----------------------------------------------------------------------------------



def print_report(args: argparse.Namespace, environment: dict, results: dict) -> None:
    print(f"model {args.model}, random weights, batch {args.batch}, CPU, {args.repeats} timed rounds")
    print(
        f"torch {environment['torch']}, open_clip {environment['open_clip']}, "
        f"{environment['threads']} threads, CPU: {environment['cpu'] or 'unknown (no /proc/cpuinfo)'}"
    )
    print(
        f"load average (1, 5, 15 min) before: {environment['load_average_before']}, "
        f"after: {environment['load_average_after']}"
    )
    print()

    header = f"{'variant':<34} {'median s':>9} {'ratio':>7} {'target':>8}  {'result':<6} {'page faults':>11}"
    print(header)
    print("-" * len(header))
    for result in results.values():
        target = result["target_ratio"]
        target_text = "-" if target is None else f"<= {target:.2f}"
        if result["passed"] is None:
            verdict = "-"
        elif result["passed"]:
            verdict = "PASS"
        else:
            verdict = "FAIL"
        faults = result["median_page_faults"]
        faults_text = "n/a" if faults is None else f"{faults:,.0f}"
        print(
            f"{result['label']:<34} {result['median_s']:>9.3f} {result['ratio']:>7.3f} "
            f"{target_text:>8}  {verdict:<6} {faults_text:>11}"
        )
    print("(page faults: median minor page faults per call)")

    print()
    for result in results.values():
        if "cache" in result:
            cache = result["cache"]
            print(
                f"{result['label']}: {cache['entries']} entries, "
                f"{format_bytes(cache['logical_bytes'])} as numel * element_size, "
                f"{format_bytes(cache['storage_bytes'])} in distinct storages (memory kept alive)"
            )
    worst = max(result["max_abs_diff_to_encode_image"] for result in results.values())
    print(f"max abs difference of the image embeddings from encode_image: {worst:.2e}")
    print(
        f"process CPU time / (wall time * threads), median over the timed calls: "
        f"{environment['cpu_share']:.2f} (well under 1 means that other processes took CPU time)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)

    clip = open_clip.create_model(args.model, pretrained=None).eval()
    hooked = HookedViT.from_open_clip_model(clip)
    image_size = hooked.cfg.image_size
    images = torch.randn(args.batch, 3, *image_size)

    def resid_only(name: str) -> bool:
        return "hook_resid" in name

    variants: dict[str, Variant] = {
        "encode_image": lambda: (clip.encode_image(images), None),
        "hooked": lambda: (hooked(images), None),
        "cache_resid": lambda: hooked.run_with_cache(images, names_filter=resid_only),
        "cache_all": lambda: hooked.run_with_cache(images),
    }

    load_before = load_average()
    with torch.inference_mode():
        max_abs_diff, cache_sizes = warm_up(variants)
        records = time_rounds(variants, args.repeats)
    load_after = load_average()

    results = summarize(records, max_abs_diff, cache_sizes)
    threads = torch.get_num_threads()
    environment = {
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "cpu": cpu_model_name(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpu_share": cpu_share(records, threads),
    }
    print_report(args, environment, results)

    if args.json is not None:
        report = {
            "model": args.model,
            "batch": args.batch,
            "image_size": list(image_size),
            "repeats": args.repeats,
            "seed": args.seed,
            "environment": environment,
            "results": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nWrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
