#!/bin/bash
# Shared by scripts/train_baseline.sh and scripts/train_with_alignment.sh (source it after setting the
# script's own defaults): the paper's launcher settings and hyper-parameters, each overridable from the environment,
# and `launch ARGS...`, which runs scripts/run_clm_lora.py under torchrun with them plus ARGS.
# dry_run=1 prints the command (one argument per line) instead of running it.

export MASTER_ADDR="${CHIEF_IP:=localhost}"
export MASTER_PORT="${MASTER_PORT:=29501}"
HOST_NUM="${HOST_NUM:-1}"
INDEX="${INDEX:-0}"

model_path="${model_path:-}"                        # paper: meta-llama/Meta-Llama-3-8B-Instruct; empty = embedded SmolLM2
train_bsz="${train_bsz:-8}"                         # paper: 32
eval_bsz="${eval_bsz:-8}"                           # paper: 32
gradient_accumulation_steps="${gradient_accumulation_steps:-2}"  # paper: 4
lora_config="${lora_config:-./config/lora_config.json}"
LR="${LR:-5e-4}"
nproc_per_node="${nproc_per_node:-1}"               # number of processes (GPUs; on a CPU: gloo processes)
block_size="${block_size:-2048}"
deepspeed_config="${deepspeed_config:-}"            # paper: ./config/deepspeed_config.json
bf16="${bf16:-False}"                               # paper: True
extra_args="${extra_args:-}"                        # anything else for run_clm_lora.py, split on spaces
overwrite_output_dir="${overwrite_output_dir:-0}"   # 1: train over OUTDIR's checkpoints (paper: always); 0 refuses
resume="${resume:-0}"                               # 1: continue from OUTDIR's latest checkpoint
dry_run="${dry_run:-0}"

launch() {
    local optional=()
    [ -n "$model_path" ] && optional+=(--model_name_or_path "$model_path")
    [ -n "$deepspeed_config" ] && optional+=(--deepspeed "$deepspeed_config")
    [ "$overwrite_output_dir" = 1 ] && optional+=(--overwrite_output_dir)
    [ "$resume" = 1 ] && optional+=(--resume_from_checkpoint True)
    local extra=()
    read -r -a extra <<< "$extra_args"
    local cmd=(
        python -m torch.distributed.run --nnodes "$HOST_NUM" --node_rank "$INDEX" --nproc_per_node "$nproc_per_node"
        --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT"
        scripts/run_clm_lora.py
        "${optional[@]}"
        --bf16 "$bf16"
        --train_file "$train_files"
        --validation_file "$valid_files"
        --use_lora True
        --lora_config "$lora_config"
        --per_device_train_batch_size "$train_bsz"
        --per_device_eval_batch_size "$eval_bsz"
        --gradient_accumulation_steps "$gradient_accumulation_steps"
        --num_train_epochs "$num_train_epochs"
        --max_steps "$max_steps"
        --save_strategy "steps"
        --save_steps 20
        --save_total_limit 2
        --learning_rate "$LR"
        --weight_decay 0.
        --warmup_ratio 0.03
        --lr_scheduler_type "inverse_sqrt"
        --logging_steps 5
        --block_size "$block_size"
        --do_train
        --eval_strategy "steps"
        --eval_steps 20
        --ddp_timeout 3600
        --seed 1
        --load_best_model_at_end True
        --metric_for_best_model "eval_loss"
        --patience 5
        --output_dir "$OUTDIR"
        "$@"
        --report_to none
        --disable_tqdm False
        "${extra[@]}"
    )
    if [ "$dry_run" = 1 ]; then
        printf '%s\n' "${cmd[@]}"
        return 0
    fi
    mkdir -p "$OUTDIR"
    "${cmd[@]}" 2>&1 | tee -a "$OUTDIR/train.log"
}
