"""Measure the time and memory of `textspan.decompose` against a plain forward pass on the CPU.

All models have random weights (`open_clip.create_model(name, pretrained=None)`, converted with
`HookedViT.from_open_clip_model`), and the images are random. Two measurements:

- Time, on ViT-B-16 at `--batch` images of 224 px, in this process: `decompose(model, images)`
  (the direct effect of every head, no token layers) against `model(images)`, both under
  `torch.inference_mode()`. Each gets one untimed warm-up call, then the two run interleaved for
  `--repeats` rounds and the table shows the median of each. Target: at most 1.25x the forward pass.
  The table also shows the median CPU time of the process (`time.process_time`, all threads),
  which other processes on a busy machine disturb less than the wall-clock time. The target
  applies to the wall-clock time.
- Memory, on ViT-L-14 at `--batch` images: the increase of peak RSS during
  `decompose(model, images, token_layers=[-4, -3, -2, -1])` followed by `.heads`, `.tokens()` and
  `.token_scores()` of 100 random unit text embeddings, against the increase during a plain
  forward pass. Target: below 1.5x the forward pass. Each of the two runs in a fresh subprocess
  (this script with `--measure forward` or `--measure decompose`), so they share no allocator
  state. The subprocess first builds the model and runs a forward pass of one image to finish
  lazy initialisation. Then it returns freed heap memory to the OS (glibc `malloc_trim`), resets
  the peak RSS through `/proc/self/clear_refs`, and reads `ru_maxrss` before and after the
  measured call. Both subprocesses run with `MALLOC_MMAP_THRESHOLD_=65536`, so that freed tensors
  go back to the OS and the RSS follows live tensor bytes rather than heap fragmentation. The reset is needed because building the model peaks higher than the measured
  call, and it works on Linux only. For comparison the table shows the memory that forming every
  head's per-token contribution at once would take, `[batch, query, key, head, d_model]` for one
  layer, computed from the model's configuration and never allocated.

The targets are reported as PASS or FAIL and not asserted. The exit status is 0 unless an error
is raised. Run it from the repository root:

    .venv/bin/python benchmarks/decompose.py
    .venv/bin/python benchmarks/decompose.py --repeats 9 --json out/decompose.json
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


from _common import cpu_model_name, format_bytes  # before textspan, see _common.py
import open_clip
import torch
import torch.nn.functional as F

from hooked_clip import HookedViT
from textspan import decompose

TIME_MODEL = "ViT-B-16"
MEMORY_MODEL = "ViT-L-14"
TOKEN_LAYERS = [-4, -3, -2, -1]
N_TEXTS = 100

# Maximum ratio of decompose to the plain forward pass: time at most 1.25x, memory below 1.5x.
TIME_TARGET = 1.25
MEMORY_TARGET = 1.5

# ru_maxrss and /proc/self/status report KiB on Linux.
KIB = 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="number of images per batch (default: 8).")
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="number of timed rounds, each running the forward pass and decompose once (default: 5).",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights, images and texts (default: 0).")
    parser.add_argument("--skip-memory", action="store_true", help=f"skip the {MEMORY_MODEL} memory measurement.")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH.")
    parser.add_argument(
        "--measure",
        choices=("forward", "decompose"),
        help="internal: run one memory measurement in this process and print it as one JSON line.",
    )
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


# -- memory, run in a subprocess ---------------------------------------------------------------


def read_proc_status_kib(field: str) -> int:
    """Return a `kB` field of /proc/self/status, such as `VmRSS` or `VmHWM`, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return int(value.split()[0])
    raise RuntimeError(f"Field {field!r} not found in /proc/self/status.")


def release_free_heap() -> None:
    """Return free heap memory to the OS, so that later allocations raise the RSS again.

    Without it a measured call could reuse pages that building the model freed but glibc kept,
    and its peak RSS increase would understate what it allocates. Does nothing outside glibc.
    """
    library = ctypes.util.find_library("c")
    libc = ctypes.CDLL(library) if library else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def reset_peak_rss() -> None:
    """Reset the process's peak RSS to its current RSS (Linux 4.0 and later, see proc(5)).

    Raises:
        RuntimeError: /proc/self/clear_refs is missing or not writable.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as error:
        raise RuntimeError(
            f"Resetting the peak RSS failed ({error}). The memory measurement needs a writable "
            "/proc/self/clear_refs (Linux). Run with --skip-memory to measure time only."
        ) from error


def naive_token_bytes(model: HookedViT, batch: int) -> int:
    """Return the bytes of `[batch, query, key, head, d_model]` for one layer at the model's dtype."""
    cfg = model.cfg
    return batch * cfg.n_ctx * cfg.n_ctx * cfg.n_heads * cfg.d_model * cfg.dtype.itemsize


def measure_memory(kind: str, batch: int, seed: int) -> dict:
    """Build the memory model and return the peak RSS increase of one forward pass or decomposition."""
    torch.manual_seed(seed)
    clip = open_clip.create_model(MEMORY_MODEL, pretrained=None).eval()
    model = HookedViT.from_open_clip_model(clip)
    del clip
    cfg = model.cfg
    images = torch.randn(batch, 3, *cfg.image_size)
    texts = F.normalize(torch.randn(N_TEXTS, cfg.d_embed), dim=-1)

    with torch.inference_mode():
        model(images[:1])
    gc.collect()
    release_free_heap()
    reset_peak_rss()
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    baseline_hwm_kib = read_proc_status_kib("VmHWM")
    rss_kib = read_proc_status_kib("VmRSS")

    start = time.perf_counter()
    with torch.inference_mode():
        if kind == "forward":
            outputs = [model(images)]
        else:
            decomposition = decompose(model, images, token_layers=TOKEN_LAYERS)
            outputs = [decomposition.heads, decomposition.tokens(), decomposition.token_scores(texts)]
    elapsed = time.perf_counter() - start

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_hwm_kib = read_proc_status_kib("VmHWM")
    return {
        "kind": kind,
        "model": MEMORY_MODEL,
        "batch": batch,
        "baseline_rss_bytes": rss_kib * KIB,
        "baseline_maxrss_bytes": baseline_kib * KIB,
        "peak_maxrss_bytes": peak_kib * KIB,
        "increase_bytes": (peak_kib - baseline_kib) * KIB,
        "increase_vmhwm_bytes": (peak_hwm_kib - baseline_hwm_kib) * KIB,
        "seconds": elapsed,
        "output_shapes": [list(output.shape) for output in outputs],
        "naive_token_bytes_per_layer": naive_token_bytes(model, batch),
        "naive_shape": [batch, cfg.n_ctx, cfg.n_ctx, cfg.n_heads, cfg.d_model],
    }


MMAP_THRESHOLD_BYTES = 65536


def run_memory_subprocess(kind: str, batch: int, seed: int) -> dict:
    """Run this script with `--measure kind` in a fresh interpreter and return its result.

    Raises:
        RuntimeError: the subprocess failed; the message ends with its stderr.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", kind]
    command += ["--batch", str(batch), "--seed", str(seed)]
    # A fixed mmap threshold makes glibc return every freed block above 64 KiB to the OS, so the
    # RSS follows the bytes of live tensors instead of heap fragmentation, which varies from run
    # to run. Both subprocesses run with the same setting.
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES)}
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if completed.returncode != 0:
        raise RuntimeError(
            f"The {kind} memory measurement failed with exit status {completed.returncode}:\n"
            f"{completed.stderr[-4000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def memory_results(batch: int, seed: int) -> dict:
    forward = run_memory_subprocess("forward", batch, seed)
    decomposition = run_memory_subprocess("decompose", batch, seed)
    for result in (forward, decomposition):
        if result["increase_bytes"] <= 0:
            raise RuntimeError(
                f"The {result['kind']} memory measurement shows no peak RSS increase, so no ratio can be "
                "computed. A zero increase means that the call only reused memory freed before the baseline."
            )
    ratio = decomposition["increase_bytes"] / forward["increase_bytes"]
    naive = decomposition["naive_token_bytes_per_layer"]
    return {
        "forward": forward,
        "decompose": decomposition,
        "ratio": ratio,
        "target_ratio": MEMORY_TARGET,
        "passed": ratio < MEMORY_TARGET,
        "naive_token_bytes_per_layer": naive,
        "naive_shape": decomposition["naive_shape"],
        "naive_to_decompose_ratio": naive / decomposition["increase_bytes"],
    }


# -- time, run in this process ----------------------------------------------------------------


def time_results(batch: int, repeats: int, seed: int) -> dict:
    torch.manual_seed(seed)
    clip = open_clip.create_model(TIME_MODEL, pretrained=None).eval()
    model = HookedViT.from_open_clip_model(clip)
    del clip
    images = torch.randn(batch, 3, *model.cfg.image_size)

    variants = {"forward": lambda: model(images), "decompose": lambda: decompose(model, images)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu_times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        # The warm-up calls also check that the decomposition sums to the embedding.
        embedding = variants["forward"]()
        total = variants["decompose"]().total()
        max_abs_diff = (total - embedding).abs().max().item()
        del embedding, total

        for _ in range(repeats):
            for name, run in variants.items():
                start, cpu_start = time.perf_counter(), time.process_time()
                output = run()
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
                del output

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["decompose"] / medians["forward"]
    cpu_medians = {name: statistics.median(values) for name, values in cpu_times.items()}
    return {
        "model": TIME_MODEL,
        "batch": batch,
        "image_size": list(model.cfg.image_size),
        "repeats": repeats,
        "forward_median_s": medians["forward"],
        "decompose_median_s": medians["decompose"],
        "forward_times_s": times["forward"],
        "decompose_times_s": times["decompose"],
        "forward_cpu_median_s": cpu_medians["forward"],
        "decompose_cpu_median_s": cpu_medians["decompose"],
        "forward_cpu_times_s": cpu_times["forward"],
        "decompose_cpu_times_s": cpu_times["decompose"],
        "cpu_ratio": cpu_medians["decompose"] / cpu_medians["forward"],
        "ratio": ratio,
        "target_ratio": TIME_TARGET,
        "passed": ratio <= TIME_TARGET,
        "max_abs_diff_total_to_forward": max_abs_diff,
    }


# -- report -----------------------------------------------------------------------------------




def print_row(
    label: str, value: str, ratio: float | None = None, target: str = "-", passed: bool | None = None
) -> None:
    ratio_text = "-" if ratio is None else f"{ratio:.3f}"
    if passed is None:
        result = "-"
    else:
        result = "PASS" if passed else "FAIL"
    print(f"{label:<48} {value:>11} {ratio_text:>7} {target:>8}  {result}")


def print_report(environment: dict, timing: dict, memory: dict | None) -> None:
    print(
        f"torch {environment['torch']}, open_clip {environment['open_clip']}, "
        f"{environment['threads']} threads, CPU: {environment['cpu'] or 'unknown (no /proc/cpuinfo)'}"
    )
    print("1-minute load average: {:.2f} at start, {:.2f} at end".format(*environment["load_average_1min"]))
    print(
        f"time: {timing['model']}, batch {timing['batch']}, {timing['image_size'][0]} px, "
        f"median of {timing['repeats']} interleaved rounds"
    )
    if memory is not None:
        print(
            f"memory: {MEMORY_MODEL}, batch {memory['forward']['batch']}, peak RSS increase in one fresh "
            f"subprocess each. decompose keeps the tokens of layers {TOKEN_LAYERS} and scores {N_TEXTS} texts."
        )
    print()

    header = f"{'measurement':<48} {'value':>11} {'ratio':>7} {'target':>8}  result"
    print(header)
    print("-" * len(header))
    print_row("time: forward, wall clock", f"{timing['forward_median_s']:.3f} s")
    print_row(
        "time: decompose (all heads), wall clock",
        f"{timing['decompose_median_s']:.3f} s",
        timing["ratio"],
        f"<= {TIME_TARGET}",
        timing["passed"],
    )
    print_row("time: forward, CPU", f"{timing['forward_cpu_median_s']:.3f} s")
    print_row("time: decompose (all heads), CPU", f"{timing['decompose_cpu_median_s']:.3f} s", timing["cpu_ratio"])
    if memory is not None:
        forward, decomposition = memory["forward"], memory["decompose"]
        print_row("memory: forward", format_bytes(forward["increase_bytes"]))
        print_row(
            "memory: decompose, heads, tokens, token_scores",
            format_bytes(decomposition["increase_bytes"]),
            memory["ratio"],
            f"< {MEMORY_TARGET}",
            memory["passed"],
        )
        print_row("memory: naive per-token terms, one layer", format_bytes(memory["naive_token_bytes_per_layer"]))

    print()
    for name in ("forward", "decompose"):
        rounds = ", ".join(f"{seconds:.2f}" for seconds in timing[f"{name}_times_s"])
        print(f"wall-clock seconds per round, {name}: {rounds}")
    if memory is not None:
        shape = ", ".join(str(size) for size in memory["naive_shape"])
        print(
            f"The naive tensor [batch, query, key, head, d_model] = [{shape}] for one layer is "
            f"{memory['naive_to_decompose_ratio']:,.0f}x the measured peak increase of decompose."
        )
        print(
            f"Peak RSS before the measured call: forward {format_bytes(forward['baseline_maxrss_bytes'])}, "
            f"decompose {format_bytes(decomposition['baseline_maxrss_bytes'])}. The measured calls took "
            f"{forward['seconds']:.1f} s and {decomposition['seconds']:.1f} s."
        )
        for result in (forward, decomposition):
            difference = abs(result["increase_bytes"] - result["increase_vmhwm_bytes"])
            if difference > 2**20 + 0.02 * result["increase_bytes"]:
                print(
                    f"WARNING: for {result['kind']}, the ru_maxrss increase "
                    f"({format_bytes(result['increase_bytes'])}) differs from the VmHWM increase "
                    f"({format_bytes(result['increase_vmhwm_bytes'])}), so ru_maxrss may contain the "
                    "parent's peak RSS inherited at exec."
                )
    else:
        print("memory: skipped (--skip-memory)")
    print(
        "max abs difference of decompose(...).total() from the forward pass: "
        f"{timing['max_abs_diff_total_to_forward']:.2e}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure_memory(args.measure, args.batch, args.seed)))
        return 0

    # Other processes on the machine slow both measurements, not always alike. The load
    # average shows whether the machine was busy.
    load_at_start = os.getloadavg()[0]

    # The memory subprocesses run first, while this process is small, because a child's
    # ru_maxrss never drops below the parent's peak RSS at exec, even after the reset.
    memory = None if args.skip_memory else memory_results(args.batch, args.seed)
    timing = time_results(args.batch, args.repeats, args.seed)

    environment = {
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model_name(),
        "load_average_1min": [load_at_start, os.getloadavg()[0]],
    }
    print_report(environment, timing, memory)

    if args.json is not None:
        report = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seed": args.seed,
            "environment": environment,
            "time": timing,
            "memory": memory,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nWrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
