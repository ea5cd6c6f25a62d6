# The two set-up commands from the README:
#   make run    installs what is needed, creates a demo database if none exists, opens KetaDesk
#   make test   installs what is needed and runs every test, lint and type check
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo-data
DEMO_DB ?= $(DEMO_DIR)/ketadesk-demo.db
DEMO_PASSWORD ?= demo-password-1
DEMO_PATIENTS ?= 200

.PHONY: run test lint typecheck pytest system venv bundle benchmarks clean

system:
	@bash scripts/ensure-system-libs.sh

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,bundle]"
	@touch $@

venv: $(VENV)/.installed

$(DEMO_DB): | venv
	@mkdir -p $(DEMO_DIR)
	@echo "Creating a demo database with $(DEMO_PATIENTS) synthetic patients at $(DEMO_DB)"
	@printf '%s\n' "$(DEMO_PASSWORD)" | $(PY) -m ketadesk --db $(DEMO_DB) demo --patients $(DEMO_PATIENTS) --password-stdin
	@echo "Demo users: 'physician' and 'admin', password: $(DEMO_PASSWORD)"

run: system venv $(DEMO_DB)
	@echo "Log in as 'physician' or 'admin' with password: $(DEMO_PASSWORD)"
	$(PY) -m ketadesk --db $(DEMO_DB)

lint: venv
	$(PY) -m ruff check ketadesk tests benchmarks
	$(PY) -m ruff check --extension spec:python build.spec

typecheck: venv
	$(PY) -m mypy

# pytest-xvfb starts Xvfb and the tests run Qt on it (xcb): real focus, keys and wheel events.
# pytest-xdist runs one worker per core (each with its own Xvfb and PostgreSQL test server),
# a test module kept whole on one worker; TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= auto
pytest: system venv
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=20

test: system venv lint typecheck pytest

bundle: system venv
	$(PY) -m PyInstaller --noconfirm --clean build.spec
	QT_QPA_PLATFORM=offscreen dist/KetaDesk/KetaDesk --self-test

benchmarks: system venv
	QT_QPA_PLATFORM=offscreen $(PY) -m benchmarks

clean:
	rm -rf build dist $(VENV) .pytest_cache .mypy_cache .ruff_cache
