# The README's two commands: `make train` and `make test`. Both create .venv when it is missing and
# reinstall only when requirements.lock or pyproject.toml changed (the stamp file). The exact versions come
# from requirements.lock; `make lock` regenerates it after a dependency changes in pyproject.toml.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := False
export RAY_USAGE_STATS_ENABLED := 0

# torch's CPU build for `make lock`: pip's find-links when set (this workplace's wheel folder), else
# PyTorch's CPU index. The lock pins torch==2.13.0 without the build tag, so that each platform's index
# (CPU here, CUDA on a cluster) supplies its own build.
TORCH_SOURCE ?= $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--index https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)

.PHONY: install lock train test sample-data clean-data retrain serve serve-mlflow browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26"

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Exact versions of everything `make install` puts in .venv (the project's dependencies and `dev` extra),
# for CPython 3.11 on Linux x86_64.
lock: | $(BIN)/python
	test -x $(BIN)/uv || $(BIN)/pip install --quiet "uv>=0.9,<1"
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		$(TORCH_SOURCE) --custom-compile-command "make lock" --quiet -o requirements.lock
	sed -i -E 's/^(torch==[0-9.]+)\+[A-Za-z0-9.]+$$/\1/' requirements.lock

# The sample data is made only when data/01_raw holds no clip yet.
sample-data: $(STAMP)
	@if [ -z "$$(find data/01_raw -type f ! -name .gitkeep -print -quit 2>/dev/null)" ]; then \
		$(BIN)/kedro run --pipeline=sample_data; \
	fi

train: sample-data
	$(BIN)/kedro run --config kedro.yml

# What the scheduled workflow runs: pull, retrain, record and push the data, the promotion gate.
retrain: $(STAMP)
	scripts/retrain.sh

# Two workers (pytest-xdist), each running whole test files (tests/conftest.py: FileScheduling): the suite
# waits on subprocesses, servers and Ray much of the time, so two share 2 cores well.
test: $(STAMP)
	$(BIN)/python -m pytest tests -n 2 --dist loadfile

# Serving the registered champion of mlflow.db here (MODEL=... for another: a models:/ or runs:/ URI in
# MLFLOW_TRACKING_URI, an MLflow model folder, a .pt file).
MODEL ?= models:/talking-face-man@champion
PORT ?= 8000
MLFLOW_PORT ?= 5001

# The live server: web page, WebSocket stream and POST /v1/videos on http://127.0.0.1:$(PORT)/
serve: $(STAMP)
	$(BIN)/talking-face serve --model $(MODEL) --port $(PORT)

# MLflow's scoring server starts `uvicorn` from PATH: the venv goes first on it (no activated venv needed).
serve-mlflow: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow models serve -m $(MODEL) --env-manager local -h 127.0.0.1 -p $(MLFLOW_PORT)

# A browser for the web page's test (tests/test_live_page.py): Debian's chromium and its driver, unless a
# Chromium or Chrome with chromedriver is there already. Needs root (CI) or sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@if { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null \
		&& command -v chromedriver >/dev/null; then \
		echo "browser: $$(command -v chromium chromium-browser google-chrome | head -1) and chromedriver are installed"; \
	else \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
			--no-install-recommends chromium chromium-driver; \
	fi
