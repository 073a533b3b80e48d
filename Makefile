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

.PHONY: install train test sample-data clean-data retrain

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
