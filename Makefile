# Two commands from nothing: `make test` and `make demo` (CONTRACT.md). Both reuse .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint clean

venv: $(STAMP)

# torch first, pinned to the CPU wheel: an unpinned torch would pull gigabytes of CUDA packages.
$(STAMP): setup.py setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[ros,dev]'
	@if $(BIN)/python -m pip show torchvision >/dev/null 2>&1; then echo "torchvision must not be installed" >&2; exit 1; fi
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/robot-policy demo

lint: venv
	$(BIN)/ruff check robot_policy sim tests

clean:
	rm -rf $(VENV) build *.egg-info
