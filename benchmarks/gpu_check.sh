#!/usr/bin/env bash
# What nas_lab's training does on one CUDA GPU, measured in under 5 minutes: training throughput in bf16 against a
# plain torch loop, SPOS and the supernet objective on CUDA under torchrun with one process (NCCL process group and
# DistributedDataParallel set up for real), fp16 with its gradient scaler and channels-last on a convolutional
# supernet, and `nas-lab train` of one architecture on the GPU. Run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # PYTHON=/path/to/python to choose the interpreter
#
# Without a CUDA GPU it stops at once with one sentence and exit status 1. Every step prints what it measured;
# the script ends with the steps that failed, if any (exit status 1), or "all GPU checks passed".
set -uo pipefail
PY=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch finds no CUDA GPU on this machine (torch.cuda.is_available() is False); run it on a GPU machine" >&2
    exit 1
fi
CACHE=$(mktemp -d)
trap 'rm -rf "$CACHE"' EXIT
FAILED=()

step() {  # step NAME SECONDS COMMAND...: run COMMAND with a time limit, print its wall time, remember a failure
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name"
    local start=$SECONDS
    if timeout "$limit" "$@"; then
        echo "-- $name: ok in $((SECONDS - start)) s"
    else
        echo "-- $name: FAILED (exit $?) after $((SECONDS - start)) s"
        FAILED+=("$name")
    fi
}

"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'device: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}')"

step "throughput, HyViTas supernet and its extracted path, bf16" 70 \
    "$PY" benchmarks/bench_training_throughput.py --space hyvitas --device cuda --precision bf16 --batch 128 --steps 20 --repeats 3
step "throughput, ViTAS super-transformer and its extracted path, bf16" 70 \
    "$PY" benchmarks/bench_training_throughput.py --space vitas --device cuda --precision bf16 --batch 128 --steps 20 --repeats 3
step "SPOS + objective=supernet.id on CUDA under torchrun --nproc_per_node=1 (NCCL, DDP, bf16 by default)" 80 \
    "$PY" -m torch.distributed.run --nproc_per_node=1 --master_port=29561 -m nas_lab run space=vitas searcher=spos \
    device=cuda searcher.epochs=1 searcher.max_batches=40 searcher.batch_size=128 searcher.population=4 \
    searcher.generations=1 searcher.parents=2 budget=1 objective=supernet.id objective.epochs=1 \
    objective.max_batches=40 objective.batch_size=128 "objective.cache=$CACHE/ddp" --no-save --no-progress
step "objective=supernet.id on HyViTas, fp16 (gradient scaler, channels-last), checkpoint every 10 steps" 60 \
    "$PY" -m nas_lab run space=hyvitas searcher=random budget=2 device=cuda objective=supernet.id \
    objective.precision=fp16 objective.epochs=2 objective.max_batches=20 objective.checkpoint_every=10 \
    "objective.cache=$CACHE/fp16" --no-save --no-progress
step "nas-lab train of one ViTAS architecture on CUDA" 60 \
    "$PY" -m nas_lab train space=vitas arch=0 dataset=digits device=cuda epochs=1 max_batches=20 "out=$CACHE/train" --no-progress

echo
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'gpu_check: %d step(s) failed:\n' "${#FAILED[@]}"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
echo "gpu_check: all GPU checks passed"
