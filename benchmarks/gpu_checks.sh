#!/usr/bin/env bash
# One pass of the GPU checks, for a lent CUDA machine with torch installed (nothing is downloaded):
#   1. pytest -m gpu tests/gpu        CUDA parity (fp32), fp16/bf16 closeness, an fp16 training run + resume
#   2. paper256 training s/kimg        batch 32, with and without path-length reg (NVIDIA: 6.75 / 5.24 s/kimg, H200),
#                                      and where its time goes (benchmarks/profile_train.py: per phase + top operators)
#   3. benchmarks/bench_generate.py    G forward img/s fp32/fp16/bf16 and peak memory; bench_stylegan3.py
#                                      --throughput: SG3-T/R img/s, beside NVIDIA's CUDA plugins (issue 11)
#   4. benchmarks/bench_metrics.py     feature-extraction img/s (Inception, VGG16, LPIPS, Fashion-MNIST classifier)
#   5. stylegan metrics fid_fmnist/kid_fmnist of the built-in model (CPU gives the same value)
#   6. ADA small vs large dataset      400 AT&T faces vs 60k Fashion-MNIST, both 32², the same network and controller
#   gens (not in the default set)      trains the generators the detector benchmark tests on (issue 14: trained models
#                                      of other families and subjects), all five at once (after the tests), GENS_S
#                                      seconds each; their G_ema comes back as $OUT/gens/<name>.safetensors
# Inputs (made on a CPU machine, see docs/benchmarks.md): .gpu/att256.zip, .gpu/att32.zip, .gpu/fmnist/*.gz;
# for gens also .gpu/photo_sources (benchmarks/photo_dataset.py export) and .gpu/faces64.zip (aligned faces).
# Results go to $OUT (default ./gpu-results): results.tgz (one log per stage, every run's stats.jsonl and grids) and
# gens/; everything the stages print is on stdout too.
# BUDGET (seconds, default 540) bounds the whole script; the ADA runs get what is left.
# STAGES (default "tests train256 generate sg3 metrics ada") picks stages; e.g. STAGES="tests gens generate sg3".
set -u
OUT=${OUT:-gpu-results}
BUDGET=${BUDGET:-540}
mkdir -p "$OUT"
START=$(date +%s)
WORK=$(mktemp -d)
LOGS=$WORK/logs  # stage logs (also on stdout), packed into results.tgz at the end
mkdir -p "$LOGS"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu TPCT=10 rehearses the commands on a CPU machine
TPCT=${TPCT:-100}  # stage time limits in percent
STAGES=" ${STAGES:-tests train256 generate sg3 metrics ada} "
GENS_S=${GENS_S:-240}
want() { [[ $STAGES == *" $1 "* ]]; }
left() { echo $((BUDGET - ($(date +%s) - START))); }
stage() { echo; echo "=== $1 (t=$(($(date +%s) - START)) s)"; }

stage env
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

summarise() {  # run dir -> median s/kimg over ticks >= 2, peak GiB, last kimg
    $PY - "$1" <<'EOF'
import json, statistics, sys, pathlib
rows = [json.loads(l) for l in (pathlib.Path(sys.argv[1]) / "stats.jsonl").read_text().splitlines()]
secs = [r["Timing/sec_per_kimg"] for r in rows]
steady = [r["Timing/sec_per_kimg"] for r in rows if r["tick"] >= 2] or secs
peak = max(r.get("Resources/peak_gpu_mem_gb", 0) for r in rows)
print(f"ticks {len(rows)}, kimg {rows[-1]['kimg']:.3f}, s/kimg median {statistics.median(steady):.2f} "
      f"(per tick: {', '.join(f'{s:.2f}' for s in secs)}), peak GiB {peak:.2f}")
EOF
}

# the large dataset is built while the tests run
$PY -m stylegan dataset --source .gpu/fmnist --dest "$WORK/fmnist32.zip" --resolution 32 >"$WORK/fmnist.log" 2>&1 &
FMNIST_PID=$!

if want tests; then
    stage "pytest -m gpu"
    timeout $((240 * TPCT / 100)) $PY -m pytest -q -m gpu tests/gpu -p no:cacheprovider 2>&1 | tail -25 | tee "$LOGS/tests.log"
fi

# generators for the detector benchmark: 64² photo crops (training sources only), aligned faces, Fashion-MNIST;
# small networks (128 channels, 128-d latents), GENS_S seconds each, all at once; SIGTERM ends each with a snapshot
GENS=(
    "sg2_photos64 --data $WORK/photos64.zip --cfg auto --batch 64 --mirror"
    "sg3t_photos64 --data $WORK/photos64.zip --cfg stylegan3-t --batch 32 --mirror"
    "sg1_faces64 --data .gpu/faces64.zip --cfg stylegan1 --batch 32 --mirror"
    "sg3r_fmnist32 --data $WORK/fmnist32.zip --cfg stylegan3-r --batch 64"
    "sg2_faces64_run2 --data .gpu/faces64.zip --cfg auto --batch 32 --mirror --seed 7"
)
if want gens; then
    stage "gens: ${#GENS[@]} generators for the detector benchmark, $((GENS_S * TPCT / 100)) s each"
    $PY benchmarks/photo_dataset.py crops --sources .gpu/photo_sources --side 64 --n 4000 --dest "$WORK/p64" \
        && $PY -m stylegan dataset --source "$WORK/p64" --dest "$WORK/photos64.zip" --resolution 64 >/dev/null
    for spec in "${GENS[@]}"; do
        read -r name args <<<"$spec"
        [[ $args == *fmnist32.zip* ]] && wait $FMNIST_PID
        # shellcheck disable=SC2086  # args is a word list on purpose
        OMP_NUM_THREADS=3 timeout -k 60 $((GENS_S * TPCT / 100)) $PY -m stylegan train $args --outdir "$WORK/gens/$name" \
            --cbase 8192 --cmax 128 --z-dim 128 --w-dim 128 --map-depth 4 --aug ada --kimg 100000 --tick 4 --snap 1000 \
            --device $DEVICE >"$WORK/gens-$name.log" 2>&1 &
    done
fi


if want gens; then
    stage "gens: waiting for the trainings"
    wait  # every background job: the trainings and the dataset
    mkdir -p "$OUT/gens"
    for spec in "${GENS[@]}"; do
        read -r name _ <<<"$spec"
        snap=$(ls "$WORK/gens/$name"/0*/network-*.safetensors 2>/dev/null | tail -1)
        echo "$name: $(tail -2 "$WORK/gens-$name.log" | tr '\n' ' ')"
        [ -n "$snap" ] && $PY -m stylegan convert "$snap" "$OUT/gens/$name.safetensors" && echo "  -> $(basename "$snap")"
        [ -n "$snap" ] && summarise "$(dirname "$snap")"
    done 2>&1 | tee "$LOGS/gens.log"
fi


if want generate; then
    stage "bench_generate"
    timeout $((90 * TPCT / 100)) $PY benchmarks/bench_generate.py --device $DEVICE 2>&1 | tee "$LOGS/bench_generate.log"
fi

if want train256; then
    stage "paper256 training, batch 32"
    P256=(--data .gpu/att256.zip --cfg paper256 --batch 32 --aug noaug --tick 0.512 --snap 1000 --device $DEVICE)
    timeout $((120 * TPCT / 100)) $PY -m stylegan train "${P256[@]}" --outdir "$WORK/p256" --kimg 3.072 >"$WORK/p256.log" 2>&1
    echo "with path-length reg: $(summarise "$WORK"/p256/0*)" | tee "$LOGS/train256.log"
    timeout $((90 * TPCT / 100)) $PY -m stylegan train "${P256[@]}" --outdir "$WORK/p256nopl" --kimg 1.536 --pl-weight 0 \
        >"$WORK/p256nopl.log" 2>&1
    echo "without path-length reg: $(summarise "$WORK"/p256nopl/0*)" | tee -a "$LOGS/train256.log"
    tail -3 "$WORK/p256.log" >>"$LOGS/train256.log"
    [ "${PROFILE:-1}" = 1 ] && timeout $((110 * TPCT / 100)) $PY benchmarks/profile_train.py --data .gpu/att256.zip --cfg paper256 --batch 32 \
        --device $DEVICE --cycles 1 --profile >"$LOGS/profile256.log" 2>&1; head -12 "$LOGS/profile256.log"
fi

if want sg3; then
    stage "StyleGAN3 throughput (ours fp32/fp16; NVIDIA's CUDA plugins when .gpu/nvidia-sg3 holds their checkout)"
    NV3=()
    [ -d .gpu/nvidia-sg3 ] && NV3=(--compare-nvidia .gpu/nvidia-sg3)
    timeout $((120 * TPCT / 100)) $PY benchmarks/bench_stylegan3.py --throughput --device $DEVICE --res 256 1024 \
        "${NV3[@]}" 2>&1 | grep -v Warning | tee "$LOGS/sg3_throughput.log"
fi

if want metrics; then
    stage "bench_metrics"
    timeout $((45 * TPCT / 100)) $PY benchmarks/bench_metrics.py --devices $DEVICE 2>&1 | tee "$LOGS/bench_metrics.log"
    wait $FMNIST_PID; tail -1 "$WORK/fmnist.log"
    stage "stylegan metrics on the built-in model (compare with the CPU value)"
    timeout $((90 * TPCT / 100)) $PY -m stylegan metrics --metrics fid_fmnist,kid_fmnist --data "$WORK/fmnist32.zip" \
        --device $DEVICE --out "$LOGS/metrics.jsonl" 2>"$WORK/metrics.log"; tail -2 "$WORK/metrics.log"
fi

if want ada; then
    stage "ADA: 400 AT&T faces vs 60k Fashion-MNIST"
    ADA=(--cfg auto --resolution 32 --cbase 8192 --cmax 256 --batch 32 --aug ada --ada-kimg 100 --kimg 1000 --tick 2
         --snap 1000 --device $DEVICE)
    T=$(($(left) - 15))
    echo "ADA runs get $T s each (concurrently)"
    OMP_NUM_THREADS=4 timeout $T $PY -m stylegan train --data .gpu/att32.zip --outdir "$WORK/ada-att" "${ADA[@]}" \
        >"$WORK/ada-att.log" 2>&1 &
    OMP_NUM_THREADS=4 timeout $T $PY -m stylegan train --data "$WORK/fmnist32.zip" --outdir "$WORK/ada-fmnist" "${ADA[@]}" \
        >"$WORK/ada-fmnist.log" 2>&1 &
    wait
    for name in ada-att ada-fmnist; do
        $PY benchmarks/ada_att.py --summary "$WORK"/$name/0* 2>&1 | sed "s/^/$name /"
    done | tee "$LOGS/ada.log"
fi

stage done
# a lent machine sends back at most 8 files: $OUT holds results.tgz (stage logs, the runs' stats and grids) and gens/
tar czf "$OUT/results.tgz" -C "$WORK" --exclude='*.safetensors' --exclude='*.pt' --exclude='*.zip' --exclude=p64 .
ls -laR "$OUT"
