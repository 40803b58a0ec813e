# Two commands on a fresh machine (CONTRACT §1): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: run test venv lint bench mutants clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: export DJANGO_DEBUG ?= 1
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_user
	$(BIN)/python manage.py ensure_operator
	$(BIN)/python -m seedance_site.devstack

# The whole suite under coverage.py (branches, and the processes the tests start), then the floor
# on the money and status modules (tests/coverage_floor.py): under it, `make test` fails.
test: venv
	rm -rf var/coverage && mkdir -p var/coverage
	$(BIN)/python -m coverage run -m pytest
	$(BIN)/python tests/coverage_floor.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every pipeline scenario in one run, beside its baselines, appended to bench/RESULTS.md.
# BENCH_SCALE=0.3 for a quick run; DATABASE_URL (flushed!) for PostgreSQL.
BENCH_SCALE ?= 1
bench: venv
	$(BIN)/python bench/pipeline.py --scale $(BENCH_SCALE)

# Mutation testing of the money and status code (tests/MUTATION.md); MODULES=accounts.billing.ledger for one.
mutants: venv
	$(BIN)/python tests/mutants.py $(MODULES)

clean:
	rm -rf $(VENV) var mutants
