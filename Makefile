# Two commands from nothing: `make test` and `make demo` (CONTRACT.md). Both reuse .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# LeRobot's own environment (optional; nothing of the default install or tests needs it):
# lerobot 0.6 wants Python >= 3.12 and torch < 2.12. PyPI's torch for Linux is a CUDA build
# (~5 GB); LEROBOT_PIP_ARGS can point pip at a CPU index instead.
LEROBOT_PYTHON ?= python3.12
LEROBOT_VENV ?= .venv-lerobot
LEROBOT_VERSION ?= 0.6.1
LEROBOT_PIP_ARGS ?=
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed

.PHONY: venv test demo lint clean lerobot-env test-lerobot

venv: $(STAMP)

# torch first, pinned to the CPU wheel: an unpinned torch would pull gigabytes of CUDA packages.
$(STAMP): setup.py setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[ros,dev,viz]'
	@if $(BIN)/python -m pip show torchvision >/dev/null 2>&1; then echo "torchvision must not be installed" >&2; exit 1; fi
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/robot-policy demo

lint: venv
	$(BIN)/ruff check robot_policy sim tests compat

lerobot-env: $(LEROBOT_STAMP)

$(LEROBOT_STAMP):
	$(LEROBOT_PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install --quiet $(LEROBOT_PIP_ARGS) \
		'lerobot[dataset,training,diffusion]==$(LEROBOT_VERSION)' 'pytest>=8'
	touch $(LEROBOT_STAMP)

# Round trips with the real LeRobot, and its policies in our graph (compat/lerobot).
test-lerobot: venv lerobot-env
	ROBOT_POLICY_VENV=$(abspath $(VENV)) $(LEROBOT_VENV)/bin/python -m pytest -q compat/lerobot

clean:
	rm -rf $(VENV) $(LEROBOT_VENV) build *.egg-info
