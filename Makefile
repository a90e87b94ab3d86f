# crm-pipeline: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export GX_ANALYTICS_ENABLED := False
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: run test dev lint format install clean demo-data bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "Installing crm-pipeline and its dependencies into $(VENV) (first time: ~2 minutes)…"
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import dagster, duckdb, ibis, great_expectations" || { echo "install failed"; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the report rendering test (tests/test_report.py): Debian's package.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	@echo "Installing Debian's chromium (headless, for the report test)…"
	@$(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
	  || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || { echo "Could not install chromium: install Debian's 'chromium' package, then rerun"; exit 1; }

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## make run: install, generate demo data if landing/ is empty, materialize everything, print the tables
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/crm-pipeline run --demo-if-empty

## make test: ruff + pytest (installs Debian's chromium for the report test when missing)
test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

## make bench SCALE=1M: the pipeline at SCALE order lines (1M, 10M, 100M or a number), stage by stage
## (wall time, peak RSS), against pandas + lifetimes and hand-written DuckDB SQL, then the CLV
## benchmark; work folder bench/work/<scale>/, results in bench/results/ (not tests: nothing asserted)
## BENCH_ARGS passes more options, e.g. BENCH_ARGS="--memory-limit 5GB --skip-peer" (see --help)
SCALE ?= 1M
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.pipeline_bench --scale $(SCALE) $(BENCH_ARGS)

## make dev: the Dagster UI on the same warehouse and instance (http://127.0.0.1:3000)
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf warehouse landing .dagster_home
