# Ephemera: `make run` (demo on embedded defaults) and `make test` do all the set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_JS := frontend/node_modules/.installed
STAMP_OIDC := tests/oidc/node_modules/.installed
BUNDLE := frontend/build/ephemera/.built
TYPED := portal approvals sessions kubesim bench cli/ephemera_cli

.PHONY: run test deps lint bench clean token busybox

deps: $(STAMP_PY) $(BUNDLE) busybox

# kubesim's container root filesystems are made from Debian's static busybox (kubesim/runtime/rootfs.py).
busybox:
	@bash scripts/ensure-busybox.sh

# Python dependencies, pinned in requirements/, into a local virtualenv; and the kubectl plugin
# (cli/, its own package) as .venv/bin/kubectl-ephemera, editable so tests run the source as it is.
$(STAMP_PY): requirements/base.txt requirements/dev.txt cli/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet -e ./cli
	touch $@

# npm packages from the lockfile (xterm.js, asciinema-player, esbuild); nothing from a CDN.
$(STAMP_JS): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

# The tests' OpenID provider (node-oidc-provider, tests/oidc/), from its lockfile.
$(STAMP_OIDC): tests/oidc/package.json tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund
	touch $@

$(BUNDLE): $(STAMP_JS) frontend/build.mjs $(shell find frontend/src -type f 2>/dev/null)
	cd frontend && node build.mjs
	touch $@

# The portal on embedded defaults: SQLite, in-memory channel layer, kubesim as the cluster,
# demo users. Prints the URL and the logins. Ctrl-C stops everything it started.
run: deps
	$(PY) -m portal.demo

# An API bearer token for a demo user, from a second shell next to `make run` (same database,
# demo mode): make token USER=alice. USER must be given: the shell's own $USER is not a demo user.
token: $(STAMP_PY)
ifneq ($(origin USER),command line)
	@echo "ephemera: say whose token, e.g. make token USER=alice" >&2; exit 2
endif
	@EPHEMERA_DEMO=1 $(PY) manage.py create_api_token '$(USER)'

# The whole suite: lint, type check, migrations check, unit/service/consumer tests, kubesim with the real
# kubectl, and the browser tests (Debian's chromium, installed here if missing).
test: deps $(STAMP_OIDC)
	bash scripts/ensure-chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(TYPED)
	EPHEMERA_DEMO=1 $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP_PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(TYPED)

# Medians and ratios measured in the same run, about ten minutes on 2 cores. With DATABASE_URL=postgres://...
# the terminal, recorder and history benches run on PostgreSQL (each in a scratch database of its own);
# bench/terminal.py --streams 50,100,300 is the many-sessions probe at big N (docs/performance.md).
bench: deps
	$(PY) bench/kubesim_attach.py
	$(PY) bench/kubesim_start.py
	$(PY) bench/terminal.py
	$(PY) bench/recorder.py
	$(PY) bench/history.py

clean:
	rm -rf $(VENV) frontend/node_modules frontend/build var staticfiles
