"""Drop the benchmarks folder from the import path, because `benchmarks/textspan.py` would shadow
the `textspan` package for every script run from this folder. Import it before `textspan`."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
