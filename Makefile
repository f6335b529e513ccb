# The two front doors: `make run` (set up, then serve) and `make test`
# (set up, then every check and test). Each step is idempotent and says what
# it did; run as root on a fresh Debian-like machine, it installs what it needs.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# What a run's way into a box changes: with the pool off every run takes the
# cold path, so the hostile corpus's lifecycle, controls, limits and compile
# stage, and the socket's run lifecycle run again. What a program sees inside
# (test_inside, test_filesystem) and how its output is handled once it runs
# (test_output, test_protocol) do not depend on the way in: the spec recorder
# checks every container against the same spec in both passes. REST, the
# compatibility APIs, rooms and pages are adapters over the same Runner (pass
# 1 ran them); servers that set the pool themselves run the same.
COLD_PATH := tests/hostile/test_lifecycle.py tests/hostile/test_control_messages.py \
	tests/hostile/test_resources.py tests/hostile/test_output_cap.py \
	$(filter-out tests/integration/test_ws_fuzz.py,$(wildcard tests/integration/test_ws_*.py)) \
	tests/integration/test_compile_cache.py tests/integration/test_type_ahead.py

.PHONY: run test setup engine image assets browser deploy-checks lint unit bench doctor clean-leftovers

run: setup
	$(PY) -m ce_ws serve

test: setup browser deploy-checks lint
	$(PY) -m pytest tests --ignore=tests/faults --durations=40
	@echo "[test] again without the warm pool: every run takes the cold path"
	CE_POOL__ENABLED=false $(PY) -m pytest $(COLD_PATH) --durations=15
	@echo "[test] faults last: they stop and start a scratch engine of their own"
	$(PY) -m pytest tests/faults

setup: $(STAMP) engine image assets

$(STAMP): pyproject.toml
	@echo "[setup] creating $(VENV) and installing the package with its test tools"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

engine:
	@bash scripts/ensure-engine.sh

image: $(STAMP) engine
	@$(PY) -m ce_ws image

assets:
	@bash scripts/build-assets.sh

browser:
	@bash scripts/ensure-package.sh /usr/bin/chromium chromium

# What the tests of deploying several replicas run: a real nginx, a real
# Redis, systemd's unit checker, and openssl for an engine's TLS certificates.
deploy-checks:
	@bash scripts/ensure-package.sh /usr/sbin/nginx nginx
	@bash scripts/ensure-package.sh /usr/bin/redis-server redis-server
	@bash scripts/ensure-package.sh /usr/bin/systemd-analyze systemd
	@bash scripts/ensure-package.sh /usr/bin/openssl openssl

lint: $(STAMP)
	$(PY) -m ruff check ce_ws tests bench
	$(PY) -m ruff format --check ce_ws tests bench
	$(PY) -m mypy ce_ws

doctor: $(STAMP)
	$(PY) -m ce_ws doctor

bench: setup
	$(PY) -m bench
