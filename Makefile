PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup run demo test lint format migrate bench bench-escalation schema clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

migrate: setup
	$(BIN)/python manage.py migrate --noinput

run: setup migrate
	$(BIN)/honcho start web worker beat escalation

demo: setup
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SECRET_KEY=lint $(BIN)/python manage.py makemigrations --check --dry-run

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: setup
	SECRET_KEY=schema $(BIN)/python manage.py spectacular --file var/openapi.yaml --validate

bench: setup
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

bench-escalation: setup
	$(BIN)/python scripts/bench_escalation.py $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache
