#!/bin/bash
# Training with middle-layer alignment (the paper's scripts/train_with_alignment.sh).
# Every variable below can be overridden from the environment, e.g.
#   model_path=meta-llama/Meta-Llama-3-8B-Instruct train_bsz=32 gradient_accumulation_steps=4 max_steps=-1 \
#   nproc_per_node=8 deepspeed_config=./config/deepspeed_config.json bf16=True bash scripts/train_with_alignment.sh
# Defaults run on a CPU in a few minutes with the embedded SmolLM2-135M-Instruct and data_example/.
set -euo pipefail
cd "$(dirname "$0")/.."

export MASTER_ADDR="${CHIEF_IP:=localhost}"
export MASTER_PORT="${MASTER_PORT:=29501}"
HOST_NUM="${HOST_NUM:-1}"
INDEX="${INDEX:-0}"

model_path="${model_path:-}"                        # paper: meta-llama/Meta-Llama-3-8B-Instruct; empty = embedded SmolLM2
train_files="${train_files:-./data_example/train_baseline_with_alignment.json}"
valid_files="${valid_files:-./data_example/valid_baseline_with_alignment.json}"
train_bsz="${train_bsz:-8}"                         # paper: 32
eval_bsz="${eval_bsz:-8}"                           # paper: 32
gradient_accumulation_steps="${gradient_accumulation_steps:-2}"  # paper: 4
lora_config="${lora_config:-./config/lora_config.json}"
LR="${LR:-5e-4}"
OUTDIR="${OUTDIR:-./test_run_outputs/with_alignment}"
nproc_per_node="${nproc_per_node:-1}"               # number of processes (GPUs; on a CPU: gloo processes)
loss_layer="${loss_layer:-}"                        # paper: 16; empty = 16 for 32-layer models, else the middle layer
loss_temperature="${loss_temperature:-0.1}"
loss_distance_type="${loss_distance_type:-cosine}"
pooling_type="${pooling_type:-mean_skip_first}"     # paper: mean. SmolLM2's first position is an attention sink
                                                    # whose activations swamp a plain mean (README: Pooling)
num_train_epochs="${num_train_epochs:-10}"          # paper: 10 (twice the baseline's, as alternate halves task steps)
max_steps="${max_steps:-40}"                        # -1 = train for num_train_epochs (paper)
block_size="${block_size:-2048}"
deepspeed_config="${deepspeed_config:-}"            # paper: ./config/deepspeed_config.json
bf16="${bf16:-False}"                               # paper: True
extra_args="${extra_args:-}"

mkdir -p "$OUTDIR"
optional=()
[ -n "$model_path" ] && optional+=(--model_name_or_path "$model_path")
[ -n "$loss_layer" ] && optional+=(--additional_loss_layer "$loss_layer")
[ -n "$deepspeed_config" ] && optional+=(--deepspeed "$deepspeed_config")

python -m torch.distributed.run --nnodes "$HOST_NUM" --node_rank "$INDEX" --nproc_per_node "$nproc_per_node" \
    --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
    scripts/run_clm_lora.py \
    "${optional[@]}" \
    --bf16 "$bf16" \
    --train_file "$train_files" \
    --validation_file "$valid_files" \
    --use_lora True \
    --lora_config "$lora_config" \
    --per_device_train_batch_size "$train_bsz" \
    --per_device_eval_batch_size "$eval_bsz" \
    --gradient_accumulation_steps "$gradient_accumulation_steps" \
    --num_train_epochs "$num_train_epochs" \
    --max_steps "$max_steps" \
    --save_strategy "steps" \
    --save_steps 20 \
    --save_total_limit 2 \
    --learning_rate "$LR" \
    --weight_decay 0. \
    --warmup_ratio 0.03 \
    --lr_scheduler_type "inverse_sqrt" \
    --logging_steps 5 \
    --block_size "$block_size" \
    --do_train \
    --eval_strategy "steps" \
    --eval_steps 20 \
    --ddp_timeout 3600 \
    --seed 1 \
    --load_best_model_at_end True \
    --metric_for_best_model "eval_loss" \
    --patience 5 \
    --output_dir "$OUTDIR" \
    --contrastive_data_mode 2 \
    --contrastive_loss_temperature "$loss_temperature" \
    --distance_function "$loss_distance_type" \
    --contrastive_pooling_type "$pooling_type" \
    --alternate_training \
    --report_to none \
    --disable_tqdm False --overwrite_output_dir $extra_args 2>&1 | tee -a "$OUTDIR/train.log"
