# `make test` installs the test-only dependencies, then runs the whole suite.
PYTHON ?= python

.PHONY: test test-deps chromium gpu-check gpu-wheels

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

# The GPU path tested and measured on a machine with a CUDA GPU (README, "GPU check"); without one it says so.
GPU_CHECK_OUT ?= out/gpu-check
gpu-check:
	$(PYTHON) -m seggallery.gpucheck --out $(GPU_CHECK_OUT)

# The wheels a GPU machine without network lacks (requirements-gpucheck.txt), for CPython 3.12 on x86-64, into .whl/.
gpu-wheels:
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl -r requirements-gpucheck.txt
