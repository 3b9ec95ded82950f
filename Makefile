# `make demo` and `make test` create .venv on first use and install the project into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS ?=
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

MODEL ?= ViT-B-16
PRETRAINED ?= laion2b_s34b_b88k
OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: demo test install benchmark clean

$(BIN)/textspan: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PIP_CONSTRAINTS) -e ".[dev]"
	touch $(BIN)/textspan

install: $(BIN)/textspan

demo: install
	$(BIN)/textspan demo --model $(MODEL) --pretrained $(PRETRAINED) --out $(OUT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

benchmark: install
	$(BIN)/python benchmarks/forward.py
	$(BIN)/python benchmarks/decompose.py
	$(BIN)/python benchmarks/textspan.py
	$(BIN)/python benchmarks/heatmaps.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
