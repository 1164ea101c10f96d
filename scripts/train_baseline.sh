#!/bin/bash
# Task-only baseline (the paper's scripts/train_baseline.sh).
# Every variable here and in scripts/launch_common.sh can be overridden from the environment, e.g.
#   model_path=meta-llama/Meta-Llama-3-8B-Instruct train_bsz=32 gradient_accumulation_steps=4 max_steps=-1 \
#   nproc_per_node=8 deepspeed_config=./config/deepspeed_config.json bf16=True bash scripts/train_baseline.sh
# Defaults run on a CPU in a few minutes with the embedded SmolLM2-135M-Instruct and data_example/.
set -euo pipefail
cd "$(dirname "$0")/.."

train_files="${train_files:-./data_example/train_baseline.json}"
valid_files="${valid_files:-./data_example/valid_baseline.json}"
OUTDIR="${OUTDIR:-./test_run_outputs/baseline}"
num_train_epochs="${num_train_epochs:-5}"           # paper: 5
max_steps="${max_steps:-20}"                        # -1 = train for num_train_epochs (paper)

source scripts/launch_common.sh
launch \
    --contrastive_data_mode 0 \
    --only_train_language_modeling
