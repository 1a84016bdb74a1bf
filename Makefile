# Set-up and test entry points. The README documents exactly two commands: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install engines demo test unit lint docs bench gpu-sample

$(BIN)/vistag: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	touch $(BIN)/vistag

install: $(BIN)/vistag

# Downloads (through mvn, checksum-verified) and lays out both engines under $VISTAG_HOME
# (OpenSearch also with ml-commons, for the tests of the pipelines that call `vistag service`).
engines: install
	$(BIN)/vistag engine install --engine opensearch
	$(BIN)/vistag engine install --engine opensearch --with ml
	$(BIN)/vistag engine install --engine opensearch --with security
	$(BIN)/vistag engine install --engine elasticsearch

demo: install
	$(BIN)/vistag demo

test: engines
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit vistag

# The gates CI runs besides the tests: lint and format, types, the documentation site (strict: a broken
# link or reference fails).
lint: install
	$(BIN)/ruff check vistag tests benchmarks
	$(BIN)/ruff format --check vistag tests benchmarks
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: engines
	$(BIN)/python benchmarks/bench_index.py
	$(BIN)/python benchmarks/bench_tagging.py

# 2,000 JPEGs of the fashion catalog in .gpu-sample/sample.tar (ignored by git), for benchmarks/bench_gpu.py on a
# device machine (the run carries .gpu-sample; ../shared does not travel).
gpu-sample: install
	mkdir -p .gpu-sample
	$(BIN)/python -c "import tarfile, itertools; from vistag.config import default_data_dir; \
	src = tarfile.open(default_data_dir() / 'images.tar'); out = tarfile.open('.gpu-sample/sample.tar', 'w'); \
	[out.addfile(m, src.extractfile(m)) for m in itertools.islice((m for m in src if m.isfile()), 2000)]; out.close()"
