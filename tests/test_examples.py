"""Every script in examples/ runs to the end on random weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
EXPECTED_OUTPUT = {
    "run_with_cache.py": "decomposition sums to the embedding",
    "ablate_head.py": "full effect:",
    "label_heads.py": "| L11.H0 |",
}


def test_every_example_listed():
    assert sorted(path.name for path in EXAMPLES) == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(script):
    arguments = [sys.executable, str(script), "--model", "ViT-S-32-alt", "--pretrained", "random"]
    completed = subprocess.run(arguments, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert EXPECTED_OUTPUT[script.name] in completed.stdout
