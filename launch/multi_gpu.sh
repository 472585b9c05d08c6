#!/usr/bin/env bash
# jaxgan on one host with several GPUs: one process drives all of them (no --distributed).
#
#   launch/multi_gpu.sh install cuda12   # once: jaxgan + jax[cuda12] into $VENV
#   launch/multi_gpu.sh devices          # what JAX sees
#   launch/multi_gpu.sh run [--config.batch_size=256 ...]
#
# batch_size is the global batch, split over the GPUs: it must divide by their number.
# Stop with Ctrl-C or SIGTERM (jaxgan checkpoints first); the same command resumes.
# Not run on a GPU host by its authors; tests/test_launch.py runs `run` on CPU.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
CONFIG="${CONFIG:-configs/mnist.py}"
RUN_NAME="${RUN_NAME:-mnist-gpu}"
WORKDIR="${WORKDIR:-runs/$RUN_NAME}"  # relative paths are under the repo root
EXTRA_FLAGS="${EXTRA_FLAGS:-}"        # jaxgan flags, split on spaces (or pass them to run)
# JAX preallocates 75% of each GPU's memory by default; a fraction in (0, 1] changes that
# (e.g. 0.5 to share the GPUs). XLA_PYTHON_CLIENT_PREALLOCATE=false allocates on demand.
MEM_FRACTION="${MEM_FRACTION:-}"
# CUDA notes: CUDA_VISIBLE_DEVICES=0,1 restricts the GPUs (the batch must divide by their
# number). The jax[cuda12] / jax[cuda13] wheels bring their own CUDA libraries: the host needs
# only an NVIDIA driver new enough for that CUDA version (nvidia-smi shows the driver's
# highest CUDA version); a CUDA toolkit on LD_LIBRARY_PATH can shadow the wheels' libraries.

usage() {
  cat >&2 <<'EOF'
usage: launch/multi_gpu.sh COMMAND
  install [cuda12|cuda13]  pip install -e . 'jax[cudaNN]' into $VENV (created if missing)
  devices                  print the devices JAX sees
  run [jaxgan flags...]    train on all local GPUs; workdir $WORKDIR
Environment: VENV CONFIG RUN_NAME WORKDIR EXTRA_FLAGS MEM_FRACTION CUDA_VISIBLE_DEVICES
EOF
}

cmd_install() {
  local cuda="${1:-cuda12}"
  case "$cuda" in
    cuda12 | cuda13) ;;
    *)
      echo "multi_gpu.sh: error: install takes cuda12 or cuda13, not $cuda" >&2
      return 2
      ;;
  esac
  if [[ ! -x "$VENV/bin/python" ]]; then python3 -m venv "$VENV"; fi
  # Installed together so that pip picks a jax that matches both jaxgan and the CUDA plugin.
  "$VENV/bin/pip" install -e "$REPO_ROOT" "jax[$cuda]"
}

cmd_devices() {
  "$VENV/bin/python" -c 'import jax; print(jax.default_backend(), jax.devices())'
}

cmd_run() {
  local extra=()
  read -r -a extra <<<"$EXTRA_FLAGS"
  if [[ -n "$MEM_FRACTION" ]]; then export XLA_PYTHON_CLIENT_MEM_FRACTION="$MEM_FRACTION"; fi
  cd "$REPO_ROOT"
  # exec: Ctrl-C and SIGTERM go straight to jaxgan, which checkpoints before it exits.
  exec "$VENV/bin/python" -m jaxgan.main --config="$CONFIG" --workdir="$WORKDIR" \
    "${extra[@]}" "$@"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    install) cmd_install "$@" ;;
    devices) cmd_devices ;;
    run) cmd_run "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage
      [[ -z "$cmd" ]] || echo "multi_gpu.sh: error: unknown command: $cmd" >&2
      return 2
      ;;
  esac
}

main "$@"
