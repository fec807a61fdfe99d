# dhanam-chatops — the two commands of the quick start are `make sandbox` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
SOURCES := bot commands approvals integrations core sandbox examples

.PHONY: install redis sandbox test unit fuzz lint typecheck bench lock docker-lint clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@# The sandbox and the examples are not in the runtime package: the checkout is on the path.
	@echo "$(CURDIR)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/dhanam-checkout.pth"
	@rm -f $(VENV)/.installed-*
	@touch $@

# Tests start their own redis-server; install it when it is missing (needs root, as in CI).
redis:
	@command -v redis-server >/dev/null || scripts/install-redis

sandbox: install
	$(BIN)/dhanam-bot sandbox

test: lint unit

# Parallel workers (pytest-xdist), two per core, stealing work from each other so the long
# fault and state-machine tests do not queue behind one another; each worker starts its own
# redis-server and moto on free ports. Two per core because most tests spend their time
# waiting (timers, child processes, HTTP): on 2 cores the suite took 375 s with 2 workers and
# 226 s with 4.
WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
unit: install redis
	$(BIN)/pytest -q -n $(WORKERS) --dist worksteal

# The approval flow's state machines, deep: hundreds of examples instead of CI's bounded profile.
fuzz: install redis
	DHANAM_FUZZ=1 $(BIN)/pytest -q tests/integration/test_flow_state_machine.py tests/integration/test_approval_state_machine.py

lint: install
	$(BIN)/ruff check $(SOURCES) tests bench scripts
	$(BIN)/ruff format --check $(SOURCES) tests bench scripts
	$(BIN)/mypy
	$(BIN)/mypy scripts/commands_reference.py scripts/config_reference.py scripts/audit_iam.py
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports
	@# deploy/iam-policy.json through parliament; fails on a finding scripts/audit_iam.py does not accept
	$(BIN)/python scripts/audit_iam.py deploy/iam-policy.json

bench: install redis
	$(BIN)/python bench/run_all.py

# Re-pin every dependency (needs the package index): edit pyproject.toml, then `make lock`.
lock:
	$(PYTHON) -m venv /tmp/dhanam-uv && /tmp/dhanam-uv/bin/pip install --quiet uv
	/tmp/dhanam-uv/bin/uv pip compile pyproject.toml --extra sandbox --extra dev \
		--python-version 3.11 -o requirements.lock
	/tmp/dhanam-uv/bin/uv pip compile pyproject.toml --python-version 3.11 \
		-o requirements-runtime.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
