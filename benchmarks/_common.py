"""Shared helpers of the benchmark scripts. Import it before `textspan`.

Importing it drops the benchmarks folder from the import path, because `benchmarks/textspan.py`
would otherwise shadow the `textspan` package for every script run from this folder.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]


def cpu_model_name() -> str | None:
    """Return the first `model name` of /proc/cpuinfo, or None where that file is missing."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return None


def format_bytes(n_bytes: float) -> str:
    """Format a byte count in MiB, or in GiB from 1 GiB up."""
    if abs(n_bytes) >= 2**30:
        return f"{n_bytes / 2**30:,.1f} GiB"
    return f"{n_bytes / 2**20:,.1f} MiB"
