# `make demo` and `make test` are the two commands a newcomer needs; CI runs `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test test-spark lint format bench clean chromium docs

# Two stamps: $(BIN)/tabnn, the package and its dependencies (all the demo needs), and
# $(TEST_STAMP), the test extra on top (pytest, ruff, the servers, Spark, Optuna, MLflow,
# ONNX, Playwright). `make demo` then `make test` adds the extra; the reverse installs nothing.
TEST_STAMP := $(VENV)/.test-extra

$(BIN)/tabnn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: a CPU build from the local wheel, so pip never pulls a CUDA build
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): $(BIN)/tabnn
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: $(BIN)/tabnn
	$(BIN)/tabnn demo

# the HTML report's browser test drives Debian's Chromium (never a downloaded browser);
# without it (no root, no apt) that one test skips and says how to install it
chromium:
	@test -x /usr/bin/chromium || apt-get install -y -q chromium || \
		(apt-get update -q && apt-get install -y -q chromium) || \
		echo "Could not install chromium: the report's browser test will be skipped."

test: $(TEST_STAMP) chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/docs-check
	# two workers (pytest-xdist), a test file each at a time: the tests run torch on one
	# thread, so the second core halves the wait (10.8 -> 8.4 min measured here)
	$(BIN)/pytest -q -n 2 --dist loadfile

# the documentation site (docs/, mkdocs.yml) into site/; --strict: a broken link or a
# missing page is an error
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# the Spark tests alone (pyspark is in the test extra; Spark also needs Java 17+:
# apt-get install openjdk-17-jre-headless)
test-spark: $(TEST_STAMP)
	$(BIN)/pip install -q -e ".[spark]"
	$(BIN)/pytest -q tests/test_spark.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(TEST_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# full-size benchmarks (minutes); each prints its baseline measured in the same run
bench: $(TEST_STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/w1_tutorial.py
	$(BIN)/python benchmarks/compare_speed.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/adult.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/predict_latency.py
	$(BIN)/python benchmarks/suite.py

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info
