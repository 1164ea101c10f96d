#!/usr/bin/env bash
# The measurements the Evaluation, Composition and Analysis pages quote, written to fig/ by the commands themselves
# (docs/render.py renders the pages from them; nothing is typed by hand). `make docs-results` runs it; each step is
# skipped when its results file exists, so a cut run resumes. Needs the prepared SmolLM2 (`make prepare-model`) and
# the demo's adapters (`make demo`: outputs/demo/none = the paper's loss, outputs/demo/batch = the remedy).
#
#   bash docs/results.sh [STEP ...]     # steps: adapter massive compose retrieval subspaces facts (default: all)
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
        --output-json "fig/massive_$name.json"
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
        --split heldout --pooling mean_skip_first "${adapters[@]}" --output-dir fig --name retrieval_smollm2 --overwrite
    [[ -f fig/retrieval_smollm2_mean_pooling.json ]] || run $MIDALIGN analyze retrieval \
        --input data_example/parallel.jsonl --split heldout --pooling mean --output-dir fig \
        --name retrieval_smollm2_mean_pooling --overwrite
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

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(adapter massive compose retrieval subspaces facts)
for s in "${steps[@]}"; do
    declare -F "step_$s" >/dev/null || { echo "docs/results.sh: unknown step '$s' (steps: adapter massive compose retrieval subspaces facts)" >&2; exit 2; }
    "step_$s"
done
