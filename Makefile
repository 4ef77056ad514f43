# Wangge: `make run` runs the platform, `make test` runs the test suite.
# Both set up the virtualenv (.venv) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install tools run up down status test bench store-costs contracts clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip==24.3.1
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

# The local identity provider's Node packages, again whenever the lockfile changes.
# Without npm this does nothing: `make run` says so and runs the rest, the tests that
# need the provider fail saying so.
IDENTITY := devstack/identity
IDENTITY_INSTALLED := $(IDENTITY)/node_modules/.installed

$(IDENTITY_INSTALLED): $(IDENTITY)/package.json $(IDENTITY)/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd $(IDENTITY) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	fi

# The web app's Node packages (npm ci from web/package-lock.json); devstack.web builds it.
WEB := web
WEB_INSTALLED := $(WEB)/node_modules/.installed

$(WEB_INSTALLED): $(WEB)/package.json $(WEB)/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	fi

install: $(INSTALLED) $(IDENTITY_INSTALLED) $(WEB_INSTALLED)

## promtool, amtool, a Prometheus server, docker-compose and nginx (to validate and try deploy/), chromium and a Chinese font (the browser tests and their screenshots), from Debian's packages
tools:
	@command -v promtool >/dev/null && command -v amtool >/dev/null && command -v docker-compose >/dev/null && command -v nginx >/dev/null && command -v chromium >/dev/null && \
	  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      prometheus prometheus-alertmanager docker-compose nginx chromium fonts-wqy-microhei >/dev/null; }

## the store, every service and demo data, in the foreground (Ctrl-C stops all)
run: install classifier-model
	$(PY) -m devstack run

## the same, detached; returns once every service answers /health
up: install classifier-model
	$(PY) -m devstack up

down: install
	$(PY) -m devstack down

status: install
	$(PY) -m devstack status

## unit and end-to-end tests against real RabbitMQ and a real store
test: install tools classifier-model
	$(PY) -m devstack test-broker
	$(PY) -m pytest $(PYTEST_ARGS)
	cd $(WEB) && npx vitest run
	$(PY) -m pytest --confcutdir=tests/browser tests/browser

## the browser tests, copying the README's pictures of the three faces to docs/screenshots/
.PHONY: screenshots
screenshots: install tools classifier-model
	WANGGE_README_SCREENSHOTS=docs/screenshots $(PY) -m pytest --confcutdir=tests/browser tests/browser

## throughput, latency, fan-out and memory against bare kombu/pymongo baselines: bench/results.json
bench: install classifier-model
	$(PY) -m devstack test-broker
	$(PY) -m bench.run

## what the pipeline's store commands cost the store: replayed one at a time and from many connections (bench/store_costs.json)
store-costs: install classifier-model
	$(PY) -m devstack test-broker
	$(PY) -m bench.store_costs

## train the request classifier from services/routing/corpus/ (cached under var/classifier/)
.PHONY: classifier classifier-model eval-classifier
classifier: install
	$(PY) -m services.routing.learned_classifier train

## routing's classifier model for the shipped corpus, taxonomy and rules: trained (seconds) only when not cached yet
classifier-model: install
	$(PY) -m services.routing.learned_classifier build

## the classifier on the held-out split: accuracy, macro-F1, recall per subclass, top confusions (docs/classifier-report.md)
eval-classifier: install
	$(PY) -m services.routing.learned_classifier eval --report docs/classifier-report.md

## regenerate the JSON Schema and RabbitMQ definitions from the code
contracts: install
	$(PY) -m devstack.contracts

clean: down
	rm -rf var
