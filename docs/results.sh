#!/usr/bin/env bash
# The measurements the Evaluation, Composition and Analysis pages quote, written to fig/ by the commands themselves
# (docs/render.py renders the pages from them; nothing is typed by hand). `make docs-results` runs it; each step is
# skipped when its results file exists, so a cut run resumes. Needs the prepared SmolLM2 (`make prepare-model`) and
# the demo's adapters (`make demo`: outputs/demo/none = the paper's loss, outputs/demo/batch = the remedy).
#
#   bash docs/results.sh [STEP ...]     # steps: adapter massive compose retrieval anisotropy subspaces facts sparse (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MIDALIGN=${MIDALIGN:-.venv/bin/midalign}
WORK=${WORK:-outputs/docs_results}
ADAPTER=$WORK/adapter_40   # the MASSIVE recipe's adapter: 40 steps of the paper's alternate training
DATA=data_example/massive
export HF_HUB_OFFLINE=1
mkdir -p "$WORK" fig

run() { echo "+ $*" >&2; "$@"; }

massive_eval() {  # NAME ADAPTER-FLAGS...: the paper's three MASSIVE commands, scores to fig/massive_NAME.json
    local name=$1; shift
    [[ -f fig/massive_$name.json ]] && return
    run $PY -m scripts.run_inference_massive "$@" --lang en --partition test --output-path "$WORK/$name.jsonl" \
        --no-default-template --data-dir $DATA
    run $PY scripts/extract_json_output.py "$WORK/$name.jsonl" "$WORK/$name.txt"
    run $PY -m scripts.eval_massive --pred-slots-file "$WORK/$name.txt" --lang en --partition test --data-dir $DATA \
        --output "fig/massive_$name.json"
}

step_adapter() {
    [[ -f $ADAPTER/adapter_model.safetensors ]] && return
    run $PY scripts/run_clm_lora.py --config config/recipes/smollm2_cpu_alignment.yaml --output_dir "$ADAPTER"
}

step_massive() {
    step_adapter
    massive_eval base
    massive_eval adapter_40 --peft-model-id "$ADAPTER"
}

step_compose() {
    step_adapter
    [[ -d $WORK/half ]] || run $MIDALIGN compose --adapter "$ADAPTER" --weight 0.5 --output "$WORK/half"
    [[ -d $WORK/svd2 ]] || run $MIDALIGN compose --adapter "$ADAPTER" --method svd --rank 2 --output "$WORK/svd2"
    [[ -d $WORK/whole ]] || run $MIDALIGN compose --adapter "$ADAPTER" --weight 1 --output "$WORK/whole"
    massive_eval compose_whole --peft-model-id "$WORK/whole"
    massive_eval compose_half --peft-model-id "$WORK/half"
    massive_eval compose_svd2 --peft-model-id "$WORK/svd2"
    [[ -f fig/massive_compose_identical.json ]] || run $PY - "$WORK" <<'PYEOF'
import json, sys
work = sys.argv[1]
lines = {n: open(f"{work}/{n}.txt", encoding="utf-8").read().splitlines() for n in ("adapter_40", "compose_whole")}
same = sum(a == b for a, b in zip(lines["adapter_40"], lines["compose_whole"]))
json.dump({"compared": ["adapter_40", "compose_whole"], "identical": same, "n": len(lines["adapter_40"])},
          open("fig/massive_compose_identical.json", "w"), indent=1)
PYEOF
}

step_retrieval() {
    local adapters=(--adapter outputs/demo/none --label "demo, paper loss" --adapter outputs/demo/batch
                    --label "demo, remedy (batch)")
    [[ -f fig/retrieval_smollm2.json ]] || run $MIDALIGN analyze retrieval --input data_example/parallel.jsonl \
        --split heldout --alignment-pooling mean_skip_first "${adapters[@]}" --output-dir fig --name retrieval_smollm2 --overwrite
    [[ -f fig/retrieval_smollm2_mean_pooling.json ]] || run $MIDALIGN analyze retrieval \
        --input data_example/parallel.jsonl --split heldout --alignment-pooling mean --output-dir fig \
        --name retrieval_smollm2_mean_pooling --overwrite
}

step_anisotropy() {  # before training, per layer: can the paper's loss tell the pairs apart? (the Remedies page)
    local gemma
    gemma=$($PY -c "from midalign.models import GEMMA3_MODEL_NAME, prepared_model_path; print(prepared_model_path(GEMMA3_MODEL_NAME))")
    for model in smollm2 gemma3; do
        local flags=()
        [[ $model == gemma3 ]] && flags=(--model "$gemma")
        for pooling in mean mean_skip_first; do
            [[ -f fig/anisotropy_${model}_$pooling.json ]] || run $MIDALIGN analyze anisotropy "${flags[@]}" \
                --input data_example/parallel.jsonl --lang en,de,ru,zh --alignment-pooling $pooling --loss-batch-size 16 \
                --output-dir fig --name "anisotropy_${model}_$pooling" --overwrite
        done
    done
}

step_subspaces() {
    [[ -f fig/subspaces_smollm2.json ]] || run $MIDALIGN analyze subspaces --input data_example/parallel.jsonl \
        --layers 0,3,6,9,12,15,18,21,24,27,30 --output-dir fig --name subspaces_smollm2 --overwrite
}

step_facts() {
    [[ -f fig/facts_smollm2.json ]] || run $MIDALIGN analyze facts --adapter outputs/demo/none --label \
        "demo, paper loss" --adapter "$ADAPTER" --label "MASSIVE recipe, 40 steps" --output-dir fig \
        --name facts_smollm2
}

sparse_train() {  # OUT LR EXTRA...: 20 steps of batch 8, constant lr, the task rows of data_example, no LoRA
    local out=$1 lr=$2; shift 2
    [[ -f $out/trainer_state.json ]] && return
    run $MIDALIGN train --train_file data_example/train_baseline.json --output_dir "$out" --use_lora False \
        --only_train_language_modeling --contrastive_data_mode 0 --max_steps 20 --per_device_train_batch_size 8 \
        --learning_rate "$lr" --lr_scheduler_type constant --logging_steps 1 --save_strategy no --report_to none "$@"
}

step_sparse() {  # composable sparse fine-tuning (LT-SFT) on SmolLM2: full, keep 1%, retrain only them at two lrs
    sparse_train "$WORK/sft_full" 5e-5
    [[ -f $WORK/sft_mask.safetensors ]] || run $MIDALIGN sparse diff --tuned "$WORK/sft_full" --density 0.01 \
        --output "$WORK/sft_mask.safetensors"
    for lr in 5e-5 1e-3; do
        sparse_train "$WORK/sft_sparse_$lr" $lr --sparse_mask "$WORK/sft_mask.safetensors" --weight_decay 0
        [[ -f $WORK/sft_task_$lr.safetensors ]] || run $MIDALIGN sparse diff --tuned "$WORK/sft_sparse_$lr" \
            --mask "$WORK/sft_mask.safetensors" --output "$WORK/sft_task_$lr.safetensors"
        massive_eval "sparse_$lr" --base-model-name "$WORK/sft_sparse_$lr"
    done
    massive_eval sparse_full --base-model-name "$WORK/sft_full"
    [[ -f fig/sparse_smollm2.json ]] || run $PY - "$WORK" <<'PYEOF'
import json, os, sys
from midalign.compose.sparse import SparseDiff
work = sys.argv[1]
def losses(run):
    logs = [e for e in json.load(open(f"{work}/{run}/trainer_state.json"))["log_history"] if "loss" in e]
    return {"first": logs[0]["loss"], "last": logs[-1]["loss"]}
def model_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".safetensors"))
kept = len(SparseDiff.load(f"{work}/sft_mask.safetensors"))
out = {"steps": 20, "batch_size": 8, "density": 0.01, "kept_entries": kept,
       "runs": {"full": losses("sft_full"), **{f"sparse_{lr}": losses(f"sft_sparse_{lr}") for lr in ("5e-5", "1e-3")}},
       "full_model_bytes": model_bytes(f"{work}/sft_full"),
       "task_difference_bytes": os.path.getsize(f"{work}/sft_task_1e-3.safetensors")}
json.dump(out, open("fig/sparse_smollm2.json", "w"), indent=1)
PYEOF
}

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(adapter massive compose retrieval anisotropy subspaces facts sparse)
for s in "${steps[@]}"; do
    declare -F "step_$s" >/dev/null || { echo "docs/results.sh: unknown step '$s' (steps: adapter massive compose retrieval anisotropy subspaces facts sparse)" >&2; exit 2; }
    "step_$s"
done
