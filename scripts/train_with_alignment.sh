#!/bin/bash
# Training with middle-layer alignment (the paper's scripts/train_with_alignment.sh).
# Every variable here and in scripts/launch_common.sh can be overridden from the environment, e.g.
#   model_path=meta-llama/Meta-Llama-3-8B-Instruct train_bsz=32 gradient_accumulation_steps=4 max_steps=-1 \
#   nproc_per_node=8 deepspeed_config=./config/deepspeed_config.json bf16=True bash scripts/train_with_alignment.sh
# Defaults run on a CPU in a few minutes with the embedded SmolLM2-135M-Instruct and data_example/.
set -euo pipefail
cd "$(dirname "$0")/.."

train_files="${train_files:-./data_example/train_baseline_with_alignment.json}"
valid_files="${valid_files:-./data_example/valid_baseline_with_alignment.json}"
OUTDIR="${OUTDIR:-./test_run_outputs/with_alignment}"
num_train_epochs="${num_train_epochs:-10}"          # paper: 10 (twice the baseline's, as alternate halves task steps)
max_steps="${max_steps:-40}"                        # -1 = train for num_train_epochs (paper)
loss_layer="${loss_layer:-}"                        # paper: 16; empty = 16 for 32-layer models, else the middle layer
loss_temperature="${loss_temperature:-0.1}"
loss_distance_type="${loss_distance_type:-cosine}"
pooling_type="${pooling_type:-mean_skip_first}"     # paper: mean. SmolLM2's first position is an attention sink
                                                    # whose activations swamp a plain mean (README: Pooling)

layer=()
[ -n "$loss_layer" ] && layer+=(--additional_loss_layer "$loss_layer")

source scripts/launch_common.sh
launch \
    "${layer[@]}" \
    --contrastive_data_mode 2 \
    --contrastive_loss_temperature "$loss_temperature" \
    --distance_function "$loss_distance_type" \
    --contrastive_pooling_type "$pooling_type" \
    --alternate_training
