#!/usr/bin/env bash
# Every GPU measurement of issue 12 in one call, written under OUT (about 6 minutes on one H100):
#
#   bash benchmarks/gpu.sh OUT                      # on a machine with a CUDA GPU
#   bash benchmarks/gpu.sh OUT --device cpu --quick  # the same steps at smoke size on the CPU (a test)
#
# 1. benchmarks/speed.py: every model's training step and inference rollout, plain against each fast
#    path (fuse, channels_last, bf16, CUDA graph), outputs checked; STRPM with the released code's
#    switches at the paper geometries (UCF 512², Human3.6M 1024², SJTU4K 2176x3840), batch 1 and 8.
#    -> OUT/speed.json, OUT/speed.md
# 2. A short training of the ablation suite (small scale, one seed, ABLATION_STEPS steps, fused
#    paths) in its own store, and its table. -> OUT/ablation/results.sqlite, OUT/ablation.md
#    (with --quick: the smoke suite at smoke scale, the wiring only -> OUT/smoke/, OUT/smoke.md)
#
# Environment: PYTHON (default python3) with vpbench installed; SPEED_MODELS (e.g. convlstm,strpm) to time
# only those models in step 1; VPBENCH_ASSETS holding OpenCV's
# digits.png where Debian's opencv-doc is not installed; VPBENCH_DATA for the prepared data.
set -uo pipefail
out=${1:?usage: benchmarks/gpu.sh OUT [--device cpu --quick]}
shift
device=cuda
quick=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    *) echo "benchmarks/gpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
status=0
start=$(date +%s)

paper=()
[ "$device" != cpu ] && paper=(--paper-geometries)
echo "== speed ($device) =="
models=()
[ -n "${SPEED_MODELS:-}" ] && models=(--models "$SPEED_MODELS")
"$python" "$here/benchmarks/speed.py" --device "$device" "${paper[@]}" "${quick[@]}" "${models[@]}" --out "$out" || status=1
echo "speed: $(( $(date +%s) - start )) s"

profile=()
if [ ${#quick[@]} -gt 0 ]; then
  suite=smoke; scale=smoke; steps=4; profile=(--set profile.samples=1 --set profile.throughput_batch=0)  # the wiring
else
  suite=ablation; scale=small; steps=${ABLATION_STEPS:-300}
fi
echo "== $suite training ($device) =="
store="$out/$suite/results.sqlite"
"$python" -m vpbench.cli run --suite "$suite" --scale "$scale" --seeds 1 --device "$device" \
  --fast fuse,channels_last --set "train.steps=$steps" "${profile[@]}" --store "$store" --no-progress || status=1
"$python" -m vpbench.cli table --suite "$suite" --store "$store" --format markdown > "$out/$suite.md" || status=1
echo "total: $(( $(date +%s) - start )) s"
exit $status
