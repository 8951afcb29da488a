# One command runs the main job (make demo), one runs the tests (make test).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench-ingest clean-var

install: $(STAMP)

# Re-runs only when pyproject.toml changes (idempotent).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]" "$(TORCH_SPEC)"
	touch $(STAMP)

# mypy covers the apps listed in MYPY_PATHS (grown as each app is brought to zero errors).
MYPY_PATHS ?= adplatform behaviour catalog campaigns profiles ranking delivery tracking marketplace

test: install lint
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy $(MYPY_PATHS)

demo: install
	$(PY) manage.py demo

bench-ingest: install
	$(PY) bench/ingest.py

clean-var:
	rm -rf var/

.PHONY: bench-campaigns bench-rank bench-train bench-profiles bench-loadgen
bench-campaigns: install
	$(PY) bench/campaigns_budget.py

# one command per benchmark; each writes its figures into docs/benchmarks.md
bench-rank: install
	$(PY) bench/rank.py

bench-train: install
	$(PY) bench/train.py

bench-profiles: install
	$(PY) bench/profiles.py

bench-loadgen: install
	$(PY) bench/loadgen.py

.PHONY: bench-tracking
bench-tracking: install
	$(PY) bench/tracking.py

.PHONY: bench-pacing
# a compressed day of /rank traffic through the real services: even pacing vs daily budgets
bench-pacing: install
	$(PY) bench/pacing.py --step 300 --requests 12
.PHONY: bench-retrieval
bench-retrieval: install
	$(PY) bench/retrieval.py
