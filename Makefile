# `make test` installs the test-only dependencies, then runs the whole suite.
PYTHON ?= python

.PHONY: test test-deps

test: test-deps
	$(PYTHON) -m pytest

test-deps:
	$(PYTHON) -m pip install -q -r requirements-test.txt
