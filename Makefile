# `make test` installs the test-only dependencies, then runs the whole suite.
PYTHON ?= python

.PHONY: test test-deps chromium

test: test-deps
	$(PYTHON) -m pytest

test-deps: chromium
	$(PYTHON) -m pip install -q -r requirements-test.txt

# The browser test drives the system's Chromium (Playwright cannot download browsers here). Installed
# with apt-get when missing and running as root; otherwise the test skips locally and fails under CI=true.
chromium:
	@if [ -n "$$SEGGALLERY_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core; \
	else \
		echo "chromium is not installed and cannot be installed here (not root or no apt-get): the browser test will skip"; \
	fi
