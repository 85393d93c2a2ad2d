# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0 is a local CPU wheel on these machines; naming it in the same pip command keeps
# any dependency from pulling a CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test test-full bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)" -e ".[postgres]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)" -e ".[dev,postgres,spark]"
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/interestlens demo

test: $(VENV)/.installed-dev
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# The README's full-pipeline example, verbatim (minutes of both cores).
test-full: $(VENV)/.installed-dev
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m full_pipeline

bench: $(VENV)/.installed-dev
	for b in ingest encode interests sentiment accuracy ope explore; do HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/$$b.py || exit 1; done

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) .interestlens build *.egg-info src/*.egg-info
