# Two commands do everything on a fresh machine: `make demo` and `make test` (both create .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: install demo test lint bench clean

# torch is installed first and pinned: a bare `torch` requirement on a machine without it pulls GBs of CUDA wheels.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,backbone]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(OFFLINE) $(BIN)/python examples/demo_untrained.py --output_dir outputs/demo-untrained

# `pytest` (not `python -m pytest`): the repo root must stay off sys.path, or `configuration` imports twice.
test: $(STAMP)
	$(OFFLINE) $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	mkdir -p benchmarks/results
	$(OFFLINE) $(BIN)/python benchmarks/bench_model_forward.py --output benchmarks/results/model_forward.json
	$(OFFLINE) $(BIN)/python benchmarks/bench_pipeline.py --output benchmarks/results/pipeline.json

clean:
	rm -rf $(VENV) build *.egg-info outputs benchmarks/results
