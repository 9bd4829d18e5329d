# Setup contract: `make setup` builds .venv (CPU-usable torch pair), `make quickstart` and
# `make test` set up if needed, then run.  `.ci/run` calls `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pair that imports beside torchvision on the CPU machines (docs/development.md).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.sgbench-setup

.PHONY: setup quickstart quickstart-t2i test test-slow rehearse hpsv3-env geneval-cpu clean-venv

setup: $(STAMP)

# The distribution is sparse-guidance-bench (docs/install.md): a distribution named `sgbench` in the
# venv (this project's former name, or PyPI's unrelated sgbench) owns the same module, so it goes first.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install -q $(TORCH_PIN)
	! $(BIN)/pip show -q sgbench >/dev/null 2>&1 || $(BIN)/pip uninstall -q -y sgbench
	$(BIN)/pip install -q -e '.[dev,t2i]'
	touch $(STAMP)

quickstart: setup
	$(BIN)/sgbench run suites/quickstart.yaml

quickstart-t2i: setup
	$(BIN)/sgbench run suites/t2i_quickstart.yaml

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# `sgbench run suites/<suite>.yaml --rehearse` for each shipped GPU suite, one at a time, checked
# (exit 0, the quality column in trials.csv, report.html) and timed. t2i_hpsv3 is skipped with a
# warning without an HPSv3 environment (.hpsv3-env or $$SGBENCH_HPSV3_PYTHON), t2i_geneval without
# mmdet (make geneval-cpu): a real run of either needs the same.
rehearse: setup
	$(BIN)/python benchmarks/rehearse_suites.py

# HPSv3 runs in its own environment (it pins transformers==4.45.2): torch first, then hpsv3 with
# torch pinned so pip keeps it, plus the two packages hpsv3 imports without declaring them.
HPSV3_ENV := .hpsv3-env
TORCH_ONLY := $(firstword $(TORCH_PIN))
hpsv3-env:
	test -x $(HPSV3_ENV)/bin/python || $(PY) -m venv $(HPSV3_ENV)
	$(HPSV3_ENV)/bin/python -c "import hpsv3" 2>/dev/null || { \
	  $(HPSV3_ENV)/bin/pip install -q $(TORCH_ONLY) && \
	  $(HPSV3_ENV)/bin/pip install -q hpsv3 matplotlib tensorboard $(TORCH_ONLY); }

# GenEval's detector stack for CPU tests: mmdet 3.3 with mmcv-lite (mmcv without its compiled ops,
# seconds to install instead of a ~25-minute build; Mask2Former needs no compiled op on CPU).
# GPU users install full mmcv instead (docs/t2i.md, "GenEval").
GENEVAL_CPU := 'mmdet==3.3.0' 'mmcv-lite==2.1.0' 'mmengine>=0.10,<0.11'
geneval-cpu: setup
	$(BIN)/pip install -q $(GENEVAL_CPU) $(TORCH_ONLY)

clean-venv:
	rm -rf $(VENV)
