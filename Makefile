# The two set-up commands of the README: `make demo` and `make test`.
# Both install what they need on a fresh Debian/Ubuntu machine first.

VENV ?= .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := nmap openssh-server

.PHONY: demo test lint bench system-deps

demo: system-deps $(VENV)/.installed
	$(BIN)/netwarden lab --demo

test: system-deps $(VENV)/.installed lint
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: system-deps $(VENV)/.installed
	$(BIN)/python bench/pq_posture.py

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# nmap and sshd come from the system's packages; install them when missing.
system-deps:
	@if command -v nmap >/dev/null && [ -x /usr/sbin/sshd ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	echo "installing $(SYSTEM_PACKAGES) with apt-get"; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES)
