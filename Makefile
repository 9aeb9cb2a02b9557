# The two commands that matter: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install model clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@mkdir -p var reports
	$(BIN)/complaint-triage process fixtures --format table --config config/complaint-triage.toml
	$(BIN)/complaint-triage report --date latest --format markdown --output reports/summary.md --config config/complaint-triage.toml
	$(BIN)/complaint-triage report --date latest --format html --output reports/summary.html --config config/complaint-triage.toml

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The layers' import contracts, lint and formatting (also run by .ci/run).
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

model: $(STAMP)
	$(BIN)/complaint-triage build-model

clean:
	rm -rf $(VENV) var reports build dist
