# Shortcuts only: the README's commands work without make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What `ruff check` looks at; bench/ only once it exists.
LINT_PATHS := src tests $(wildcard bench)

.PHONY: venv run test lint bench migration constraints clean distclean

venv: $(BIN)/portcullis

# Reinstalls when the dependencies or their pins change.
$(BIN)/portcullis: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

run: venv
	$(BIN)/portcullis demo --serve

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

bench: venv
	@if ls bench/*.py >/dev/null 2>&1; then \
		$(BIN)/python -m pytest bench -p no:cacheprovider -o python_files="bench_*.py test_*.py"; \
	else \
		echo "No benchmarks yet (bench/README.md)"; \
	fi

# make migration MSG="what changed"
migration: venv
	$(BIN)/python scripts/make_migration.py "$(or $(MSG),schema change)"

# After adding or upgrading a dependency in pyproject.toml.
constraints: venv
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v -e '^#' -e '^-e ' -e '^portcullis=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# Build and cache litter only: never the data directory (var/).
clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .benchmarks test-results src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
