#!/usr/bin/env bash
# One prepared check of tinysiamese on an NVIDIA GPU with CuPy, in under ~8 minutes:
#
#   1. the GPU-marked tests                      pytest -m gpu
#   2. every backward pass, checked on the GPU   tinysiamese gradcheck --backend cupy
#   3. the benchmark on cupy, small and koch at minibatch 32 and 128
#      (with PyTorch on CUDA as the reference when PyTorch has CUDA there)
#   4. the real training step (bench.py --step group: 64 images, 2,016 pairs), small and
#      koch, with the convs on auto (the Fourier path where layers.use_fft picks it) and
#      on im2col. NOT YET RUN on a GPU: added in a CPU-only session (issue 24); the
#      Fourier path's CuPy arithmetic is covered by the GPU-marked tests of step 1
#      (tests/test_fftconv.py), its speed there by nothing yet. use_fft's crossover
#      was fitted on a CPU; whether it holds on a GPU is what these rows will say.
#      The images' block runs as one conv-and-pool product on auto (layers.ConvPool2D,
#      also CPU-only so far): its CuPy arithmetic is in step 1 (tests/test_convpool.py).
#
# and a short table of results, printed last. Usage, from anywhere:
#
#   scripts/gpu_check.sh                      # uses .venv/bin/python if present
#   PYTHON=python3 GPU_CHECK_SECONDS=300 scripts/gpu_check.sh
#   GPU_CHECK_BACKEND=numpy scripts/gpu_check.sh   # dry run of this script on the CPU
#
# Exit status: 0 when every step passed, 1 when one failed or timed out, 2 when there is
# no usable GPU/CuPy (nothing else is run then).
set -u

cd "$(dirname "$0")/.." || { echo "gpu_check: cannot enter the repository root" >&2; exit 2; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3 || true)
[ -n "$PY" ] || { echo "gpu_check: no python found (set PYTHON=...)" >&2; exit 2; }
TOTAL=${GPU_CHECK_SECONDS:-480}   # the whole script's budget, in seconds
START=$SECONDS
BACKEND=${GPU_CHECK_BACKEND:-cupy}
OUT=${GPU_CHECK_OUT:-${OUT:-$(mktemp -d)}}
mkdir -p "$OUT"
SUMMARY=()
FAILED=0

say() { printf '\n=== %s\n' "$*"; }
left() { echo $(( TOTAL - (SECONDS - START) )); }

# run_step NAME LIMIT_S CMD...: runs CMD with the smaller of LIMIT_S and the time left,
# logs to $OUT/NAME.log, records ok / FAIL (rc) / TIMEOUT / SKIP in the summary.
run_step() {
    local name=$1 limit=$2; shift 2
    local budget; budget=$(left)
    if [ "$budget" -lt 10 ]; then
        SUMMARY+=("$(printf '%-28s %-9s %s' "$name" SKIP 'no time left')"); FAILED=1; return
    fi
    [ "$limit" -gt "$budget" ] && limit=$budget
    say "$name (limit ${limit}s): $*"
    local t0=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
    local dt=$(( SECONDS - t0 )) status=ok
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=TIMEOUT; FAILED=1
    elif [ "$rc" -ne 0 ]; then status="FAIL($rc)"; FAILED=1; fi
    SUMMARY+=("$(printf '%-28s %-9s %4ss  log: %s' "$name" "$status" "$dt" "$OUT/$name.log")")
}

# ---------------------------------------------------------------- 0. is there a GPU?
say "device"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader || echo "(nvidia-smi not found)"
if [ "$BACKEND" != cupy ]; then
    echo "dry run on backend $BACKEND: no GPU is checked"
elif ! timeout 120 "$PY" - <<'EOF'
import sys
try:
    from tinysiamese.backend import get_backend
    be = get_backend("cupy")
except Exception as exc:
    print(f"gpu_check: no usable GPU backend: {exc}", file=sys.stderr)
    sys.exit(2)
import cupy
props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
print(f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
      f"device {props['name'].decode()}")
try:
    import torch
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
except ImportError:
    print("torch absent: no PyTorch reference")
EOF
then
    echo "gpu_check: stopping: CuPy or a CUDA device is missing (see above)." >&2
    exit 2
fi

# ---------------------------------------------------------------- 1. GPU-marked tests
run_step pytest-gpu 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests

# ---------------------------------------------------------------- 2. gradient checks on cupy
run_step gradcheck-cupy 120 "$PY" -m tinysiamese gradcheck --backend "$BACKEND"

# ---------------------------------------------------------------- 3. benchmark on cupy
for row in "small 32" "small 128" "koch 32" "koch 128"; do
    set -- $row
    name="bench-$1-$2"
    run_step "$name" 90 sh -c "\"$PY\" scripts/bench.py --backend $BACKEND --preset $1 --batch $2 \
        --warmup 3 --steps 10 --json > \"$OUT/$name.json\""
done

# ---------------------------------------------------------------- 4. the group step (not yet run)
for row in "small auto" "small im2col" "koch auto" "koch im2col"; do
    set -- $row
    name="group-$1-$2"
    run_step "$name" 60 sh -c "\"$PY\" scripts/bench.py --backend $BACKEND --preset $1 --step group \
        --conv $2 --warmup 3 --steps 10 --json > \"$OUT/$name.json\""
done

# ---------------------------------------------------------------- the table, last
say "summary ($(( SECONDS - START ))s of ${TOTAL}s; logs in $OUT)"
printf '%s\n' "${SUMMARY[@]}"
"$PY" - "$OUT" <<'EOF'
import json, pathlib, sys
rows = []
for name in ("small-32", "small-128", "koch-32", "koch-128"):
    p = pathlib.Path(sys.argv[1]) / f"bench-{name}.json"
    try:
        rows.append(json.loads(p.read_text().strip().splitlines()[-1]))
    except Exception:
        rows.append({"preset": name.split("-")[0], "batch": int(name.split("-")[1]),
                     "error": "no result (see its log)"})
f = lambda v, s=".1f": "-" if v is None else format(v, s)
print(f"\n{'preset':<7}{'batch':>6}{'cupy train p/s':>16}{'eval p/s':>10}{'pool MB':>9}"
      f"{'torch cuda p/s':>16}{'ratio':>7}")
for r in rows:
    if "error" in r:
        print(f"{r['preset']:<7}{r['batch']:>6}  {r['error']}")
        continue
    print(f"{r['preset']:<7}{r['batch']:>6}{f(r['pairs_per_s']):>16}{f(r['eval_pairs_per_s']):>10}"
          f"{f(r.get('gpu_pool_mb'), '.0f'):>9}{f(r.get('torch_pairs_per_s')):>16}"
          f"{f(r.get('ratio'), '.2f'):>7}" + (f"  ({r['torch_note']})" if r.get("torch_note") else ""))
print(f"\n{'group step':<14}{'conv':>8}{'cupy img/s':>12}{'torch cuda img/s':>18}{'ratio':>7}")
for name in ("small-auto", "small-im2col", "koch-auto", "koch-im2col"):
    p = pathlib.Path(sys.argv[1]) / f"group-{name}.json"
    try:
        r = json.loads(p.read_text().strip().splitlines()[-1])
    except Exception:
        print(f"{name.split('-')[0]:<14}{name.split('-')[1]:>8}  no result (see its log)")
        continue
    print(f"{r['preset']:<14}{name.split('-')[1]:>8}{f(r['images_per_s']):>12}"
          f"{f(r.get('torch_images_per_s')):>18}{f(r.get('ratio'), '.2f'):>7}")
EOF
if [ "$FAILED" -eq 0 ]; then echo "gpu_check: all steps passed"; else echo "gpu_check: some steps FAILED (see above)"; fi
exit "$FAILED"
