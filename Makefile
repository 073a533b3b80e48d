# The README's two commands: `make train` and `make test`. Both create .venv when it is missing and
# reinstall the project only when pyproject.toml changed (the stamp file).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := False
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install train test sample-data clean-data retrain serve serve-mlflow browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26"

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

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

test: $(STAMP)
	$(BIN)/python -m pytest tests

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
