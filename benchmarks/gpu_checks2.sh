#!/usr/bin/env bash
# Second GPU pass (after gpu_checks.sh found R1 through the ADA geometric ops failing on CUDA):
#   1. the CUDA R1-through-augment test, 2. where paper256 training time goes (per phase + top operators),
#   3. ADA small vs large dataset: 400 AT&T faces vs 60k Fashion-MNIST at 32², same network and controller.
set -u
OUT=${OUT:-gpu-results}; BUDGET=${BUDGET:-380}; DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}; TPCT=${TPCT:-100}
mkdir -p "$OUT"; START=$(date +%s); WORK=$(mktemp -d)
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
left() { echo $((BUDGET - ($(date +%s) - START))); }
stage() { echo; echo "=== $1 (t=$(($(date +%s) - START)) s)"; }
$PY -m stylegan dataset --source .gpu/fmnist --dest "$WORK/fmnist32.zip" --resolution 32 >"$WORK/fmnist.log" 2>&1 &
FMNIST_PID=$!
stage "pytest -m gpu -k r1_through"
timeout $((120 * TPCT / 100)) $PY -m pytest -q -m gpu tests/gpu -p no:cacheprovider -k r1_through 2>&1 | tail -15 | tee "$OUT/tests.log"
stage "profile paper256"
timeout $((110 * TPCT / 100)) $PY benchmarks/profile_train.py --data .gpu/att256.zip --cfg paper256 --batch 32 \
    --device $DEVICE --cycles 1 --profile >"$OUT/profile256.log" 2>&1; head -24 "$OUT/profile256.log"
stage "ADA: 400 AT&T faces vs 60k Fashion-MNIST"
wait $FMNIST_PID; tail -1 "$WORK/fmnist.log"
ADA=(--cfg auto --resolution 32 --cbase 8192 --cmax 256 --batch 32 --aug ada --ada-kimg 100 --kimg 1000 --tick 2
     --snap 1000 --device $DEVICE)
T=$(($(left) - 12)); echo "ADA runs get $T s each (concurrently)"
OMP_NUM_THREADS=4 timeout $T $PY -m stylegan train --data .gpu/att32.zip --outdir "$WORK/ada-att" "${ADA[@]}" \
    >"$WORK/ada-att.log" 2>&1 &
OMP_NUM_THREADS=4 timeout $T $PY -m stylegan train --data "$WORK/fmnist32.zip" --outdir "$WORK/ada-fmnist" \
    "${ADA[@]}" >"$WORK/ada-fmnist.log" 2>&1 &
wait
for name in ada-att ada-fmnist; do
    tail -2 "$WORK/$name.log" | grep -i error
    $PY benchmarks/ada_att.py --summary "$WORK"/$name/0* 2>&1 | sed "s/^/$name /"
done | tee "$OUT/ada.log"
stage done
tar czf "$OUT/results2.tgz" -C "$WORK" --exclude='*.safetensors' --exclude='*.pt' --exclude='*.zip' .
