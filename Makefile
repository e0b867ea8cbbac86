# The two commands of the README: `make demo` (set up, then train the default recipe) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.PHONY: setup demo test test-only lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install -q torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@for p in plugins/*/; do [ -f "$$p/pyproject.toml" ] && $(BIN)/python -m pip install -q --no-deps -e "$$p" || true; done

demo: setup
	@if [ -d runs/dcgan-digits/checkpoints ]; then \
		echo "runs/dcgan-digits exists: continuing it (delete the folder to start over)"; \
		$(BIN)/gankit train --resume runs/dcgan-digits; \
	else $(BIN)/gankit train dcgan-digits --out runs/dcgan-digits; fi
	$(BIN)/gankit sample runs/dcgan-digits -n 64 -o runs/dcgan-digits/final-grid.png
	@echo "pictures: runs/dcgan-digits/samples/ and runs/dcgan-digits/final-grid.png"

test: setup test-only

test-only:
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy
	@for p in plugins/*/; do (cd $$p && ../../$(BIN)/mypy) || exit 1; done

bench: setup
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only --benchmark-enable -p no:randomly

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
