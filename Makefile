# Setup contract: `make setup` builds .venv (CPU-usable torch pair), `make quickstart` and
# `make test` set up if needed, then run.  `.ci/run` calls `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pair that imports beside torchvision on the CPU machines (see README).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.sgbench-setup

.PHONY: setup quickstart test test-slow bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[dev,t2i]'
	touch $(STAMP)

quickstart: setup
	$(BIN)/sgbench run suites/quickstart.yaml

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

bench: setup
	$(BIN)/python -m benchmarks

clean-venv:
	rm -rf $(VENV)
