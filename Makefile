# tradeforge developer targets. `make check` is the test command the README and .ci/run use.
PY ?= python
VENV ?= .venv

.PHONY: install lint type imports test check bench quickstart clean

install:
	$(PY) -m pip install -c constraints.txt -e ".[dev,vendors,crypto]"

lint:
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks

type:
	mypy

imports:
	lint-imports

test:
	$(PY) -m pytest -n 2 -q

check: lint type imports test

bench:
	$(PY) benchmarks/run_all.py

quickstart:
	tradeforge run configs/quickstart.yaml

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache runs
