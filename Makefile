# Borderpost set-up. Two commands on a fresh Debian machine with Python 3.11:
#   make run    install everything, migrate ./var/borderpost.db, ensure an admin, serve the post
#   make test   install the test dependencies (and Debian's chromium) and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.borderpost-installed
TEST_STAMP := $(VENV)/.borderpost-test-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint clean-var chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The face stack: prebuilt dlib-bin (never compile dlib), then face-recognition without deps.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip "setuptools<82" wheel
	$(BIN)/pip install --quiet dlib-bin face_recognition_models
	$(BIN)/pip install --quiet --no-deps face-recognition==1.3.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

chromium:
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

run: $(STAMP)
	$(BIN)/borderpost db upgrade
	$(BIN)/borderpost bootstrap
	$(BIN)/borderpost serve

test: $(TEST_STAMP) chromium
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

clean-var:
	rm -rf var
