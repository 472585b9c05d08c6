#!/usr/bin/env bash
# jaxgan on a Cloud TPU VM or pod slice: create, set up, run, resume after preemption, fetch.
#
#   BUCKET=my-bucket launch/tpu_vm.sh create     # the TPU VM (a Spot VM unless SPOT=0)
#   BUCKET=my-bucket launch/tpu_vm.sh setup      # repo, Python, jax[tpu], bucket mount: all workers
#   BUCKET=my-bucket launch/tpu_vm.sh run        # train on all workers (--distributed)
#   BUCKET=my-bucket launch/tpu_vm.sh resume-loop  # recreate after preemption until finished
#
# See launch/README.md. Not run against real Cloud TPUs by its authors: the gcloud calls follow
# the gcloud reference; the pure logic (is-finished, the resume loop) is tested offline with a
# fake gcloud in tests/test_launch.py.
set -euo pipefail

# Configuration (environment variables). The workdir is gs://$BUCKET/$RUN_NAME, mounted with
# gcsfuse at $MOUNT_DIR on every worker: jaxgan writes it with ordinary file I/O, and all hosts
# write the orbax checkpoints jointly, so every worker must see the same files at the same path.
TPU_NAME="${TPU_NAME:-jaxgan}"
ZONE="${ZONE:-us-central2-b}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-8}"
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
PROJECT="${PROJECT:-}"                # empty: gcloud's configured project
BUCKET="${BUCKET:-}"                  # required by setup, run, resume-loop, fetch (no gs://)
RUN_NAME="${RUN_NAME:-mnist}"
SPOT="${SPOT:-1}"                     # 1: --spot (cheap, preemptible); 0: on-demand
CONFIG="${CONFIG:-configs/mnist.py}"  # relative to the repo root
EXTRA_FLAGS="${EXTRA_FLAGS:-}"        # more jaxgan flags, split on spaces: --config.num_steps=9000
MOUNT_DIR="${MOUNT_DIR:-/mnt/gcs}"    # where the bucket is mounted on every worker
REMOTE_REPO="${REMOTE_REPO:-jaxgan}"  # the repo copy on each worker, under its home
REMOTE_VENV="${REMOTE_VENV:-jaxgan-venv}"  # the virtualenv on each worker, under its home
# jaxgan needs Python >= 3.11; tpu-ubuntu2204-base ships 3.10, so setup gets one with uv.
PYTHON_VERSION="${PYTHON_VERSION:-3.12}"
FETCH_DIR="${FETCH_DIR:-runs/$RUN_NAME}"  # where fetch copies metrics and samples
POLL_SECONDS="${POLL_SECONDS:-60}"        # resume-loop: wait between checks
MAX_RUN_FAILURES="${MAX_RUN_FAILURES:-3}" # resume-loop: failed runs in a row on a READY TPU
DELETE_WHEN_DONE="${DELETE_WHEN_DONE:-0}" # resume-loop: 1 deletes the TPU once finished

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat >&2 <<'EOF'
usage: launch/tpu_vm.sh COMMAND
  create        create the TPU VM (gcloud compute tpus tpu-vm create; --spot unless SPOT=0)
  setup         copy the repo to all workers, install jaxgan + jax[tpu], mount the bucket
  run           train on all workers with --distributed; workdir $MOUNT_DIR/$RUN_NAME
  stop          SIGTERM the trainers: they checkpoint and exit; run again to resume
  logs          the last lines of worker 0's training log
  status        the TPU's state and the run's latest checkpoint step
  resume-loop   until the run finished: recreate + setup if PREEMPTED or gone, then run
  is-finished [DIR|gs://...]  exit 0 if the latest checkpoint step >= config num_steps
  fetch         copy metrics, samples, tensorboard, config from the bucket to $FETCH_DIR
  delete        delete the TPU VM (the bucket and its runs stay)
Environment: TPU_NAME ZONE ACCELERATOR_TYPE RUNTIME_VERSION PROJECT BUCKET RUN_NAME SPOT CONFIG
EXTRA_FLAGS MOUNT_DIR REMOTE_REPO REMOTE_VENV PYTHON_VERSION FETCH_DIR POLL_SECONDS
MAX_RUN_FAILURES DELETE_WHEN_DONE (see launch/README.md).
EOF
}

die() {
  echo "tpu_vm.sh: error: $*" >&2
  exit 2
}

log() {
  echo "[tpu_vm.sh $(date +%H:%M:%S)] $*" >&2
}

# --- Finished or not: pure logic, no gcloud needed for a local directory ------------------

# Reads checkpoint directory names (or gs:// URLs) on stdin, prints the largest step, or
# nothing. Orbax names a finished checkpoint by its step; in-progress ones have other names
# (e.g. 6.orbax-checkpoint-tmp-1234), which do not count.
latest_step() {
  local line name max=''
  while IFS= read -r line; do
    line="${line%/}"
    name="${line##*/}"
    if [[ "$name" =~ ^[0-9]+$ ]] && { [[ -z "$max" ]] || ((10#$name > max)); }; then
      max="$((10#$name))"
    fi
  done
  printf '%s\n' "$max"
}

# num_steps of the config.json on stdin (a top-level key; no nested config has one).
num_steps_of() {
  sed -n 's/.*"num_steps": *\([0-9][0-9]*\).*/\1/p' | head -n 1
}

# Prints "LATEST NUM_STEPS" for a workdir (a local path or gs://...); fails if it has no
# config.json yet. num_steps comes from config.json, the config of the latest launch.
progress() {
  local target="$1" config listing num_steps latest
  if [[ "$target" == gs://* ]]; then
    config="$(gcloud storage cat "$target/config.json" 2>/dev/null)" || return 1
    listing="$(gcloud storage ls "$target/checkpoints/" 2>/dev/null)" || listing=''
  else
    config="$(cat "$target/config.json" 2>/dev/null)" || return 1
    listing="$(ls -1 "$target/checkpoints" 2>/dev/null)" || listing=''
  fi
  num_steps="$(num_steps_of <<<"$config")"
  [[ -n "$num_steps" ]] || return 1
  latest="$(latest_step <<<"$listing")"
  echo "${latest:-0} $num_steps"
}

is_finished() {
  local latest num_steps
  read -r latest num_steps < <(progress "$1") || return 1
  ((latest >= num_steps))
}

# --- gcloud wrappers -----------------------------------------------------------------------

gcloud_tpu() {
  local extra=()
  if [[ -n "$PROJECT" ]]; then extra=(--project="$PROJECT"); fi
  gcloud compute tpus tpu-vm "$@" --zone="$ZONE" "${extra[@]}"
}

require_bucket() {
  [[ -n "$BUCKET" ]] || die 'set BUCKET to a Cloud Storage bucket name (without gs://)'
  [[ "$BUCKET" != gs://* ]] || die "BUCKET is a bucket name, not a URL: ${BUCKET#gs://}"
}

workdir_url() {
  echo "gs://$BUCKET/$RUN_NAME"
}

# Runs a function defined below on the workers: its definition travels with the command (so
# the linter checks it here like any other code), its arguments quoted with printf %q.
on_workers() {
  local worker="$1" fn="$2"
  shift 2
  local cmd
  cmd="$(declare -f remote_abs "$fn"); $fn$(printf ' %q' "$@")"
  gcloud_tpu ssh "$TPU_NAME" --worker="$worker" --command="$cmd"
}

# The TPU's state (READY, PREEMPTED, ...), GONE if it does not exist, or UNKNOWN. Only
# stdout is the state: gcloud may print warnings on stderr.
tpu_state() {
  local out err rc=0
  err="$(mktemp)"
  out="$(gcloud_tpu describe "$TPU_NAME" --format='value(state)' 2>"$err")" || rc="$?"
  if [[ "$rc" == 0 ]]; then
    echo "${out:-UNKNOWN}"
  elif grep -q -e NOT_FOUND -e 'not found' "$err"; then
    echo GONE
  else
    cat "$err" >&2
    echo UNKNOWN
  fi
  rm -f "$err"
}

# --- Functions that run on the workers (sent by on_workers) ---------------------------------

# An absolute path on the worker: relative ones are under its home.
remote_abs() {
  case "$1" in
    /*) echo "$1" ;;
    *) echo "$HOME/$1" ;;
  esac
}

remote_setup() {
  set -euo pipefail
  local bucket="$1" mount_dir="$2" repo venv python_version="$5"
  repo="$(remote_abs "$3")"
  venv="$(remote_abs "$4")"
  # Cloud Storage FUSE from Google's apt repository, as its install guide does it.
  if ! command -v gcsfuse >/dev/null; then
    echo "deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-$(lsb_release -c -s) main" |
      sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null
    curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg |
      sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null
    sudo apt-get update -q
    sudo apt-get install -y -q gcsfuse
  fi
  sudo mkdir -p "$mount_dir"
  sudo chown "$(id -u):$(id -g)" "$mount_dir"
  if ! mountpoint -q "$mount_dir"; then
    # --implicit-dirs: see directories that other hosts created. --rename-dir-limit: orbax
    # finishes a checkpoint by renaming its temporary directory, which gcsfuse refuses by
    # default. --metadata-cache-ttl-secs=0: see other hosts' writes at once.
    gcsfuse --implicit-dirs --rename-dir-limit=100000 --metadata-cache-ttl-secs=0 \
      "$bucket" "$mount_dir"
  fi
  # A Python >= 3.11 virtualenv (uv fetches the interpreter), then jaxgan and jax[tpu]
  # resolved together so that jax and libtpu match.
  python3 -m pip install --user -q --upgrade uv
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m uv venv --seed --python "$python_version" "$venv"
  fi
  cd "$repo"
  "$venv/bin/pip" install -q -e . 'jax[tpu]'
  echo "$(hostname): $("$venv/bin/python" -c 'import jax; print("jax", jax.__version__)')"
}

# Starts the trainer detached from the ssh session (so a dropped connection does not kill
# it), or attaches to the one already running; streams its log; returns its exit status.
# On preemption the VM's shutdown sends it SIGTERM: it checkpoints and exits.
remote_run() {
  set -euo pipefail
  local repo venv mount_dir="$3" run_name="$4"
  repo="$(remote_abs "$1")"
  venv="$(remote_abs "$2")"
  shift 4
  local state="$HOME/.jaxgan/$run_name"
  if ! mountpoint -q "$mount_dir"; then
    echo "$(hostname): the bucket is not mounted at $mount_dir: run setup first" >&2
    return 3
  fi
  mkdir -p "$state"
  if [[ -f "$state/wrapper.pid" ]] && kill -0 "$(<"$state/wrapper.pid")" 2>/dev/null; then
    echo "$(hostname): attaching to the trainer already running (log $state/train.log)"
  else
    rm -f "$state/rc"
    : >"$state/train.log" # exists before tail opens it, however late the subshell starts
    cd "$repo"
    (
      trap '' HUP # ignored signals are inherited: the trainer outlives the ssh session
      "$venv/bin/python" -m jaxgan.main --workdir="$mount_dir/$run_name" --distributed "$@" &
      echo "$!" >"$state/trainer.pid"
      rc=0
      wait "$!" || rc="$?"
      echo "$rc" >"$state/rc"
    ) >>"$state/train.log" 2>&1 </dev/null &
    echo "$!" >"$state/wrapper.pid"
  fi
  tail -n +1 --pid="$(<"$state/wrapper.pid")" -f "$state/train.log"
  return "$(cat "$state/rc" 2>/dev/null || echo 1)"
}

remote_stop() {
  local pidfile="$HOME/.jaxgan/$1/trainer.pid"
  if [[ -f "$pidfile" ]] && kill -TERM "$(<"$pidfile")" 2>/dev/null; then
    echo "$(hostname): sent SIGTERM to the trainer; it checkpoints and exits"
  else
    echo "$(hostname): no trainer running"
  fi
}

remote_logs() {
  tail -n "$2" "$HOME/.jaxgan/$1/train.log"
}

# --- Commands --------------------------------------------------------------------------------

cmd_create() {
  local flags=(
    --accelerator-type="$ACCELERATOR_TYPE"
    --version="$RUNTIME_VERSION"
    # The VM's service account writes the bucket through gcsfuse; the scope allows it, the
    # account still needs a role on the bucket (roles/storage.objectUser).
    --scopes=https://www.googleapis.com/auth/cloud-platform
  )
  if [[ "$SPOT" == 1 ]]; then flags+=(--spot); fi
  log "creating $TPU_NAME ($ACCELERATOR_TYPE, $RUNTIME_VERSION, zone $ZONE, spot=$SPOT)"
  gcloud_tpu create "$TPU_NAME" "${flags[@]}"
}

# Copies the files git knows about (tracked or untracked but not ignored: no .venv, no runs/)
# to ~/$REMOTE_REPO on every worker, replacing the previous copy.
copy_repo() {
  [[ "$REMOTE_REPO" != */* ]] || die "REMOTE_REPO must be a directory name under the home"
  local stage rc=0
  stage="$(mktemp -d)"
  # Chained with && rather than relying on set -e, which bash ignores when the caller tests
  # this function's status (as resume-loop does).
  mkdir "$stage/$REMOTE_REPO" &&
    stage_repo "$stage/$REMOTE_REPO" &&
    gcloud_tpu ssh "$TPU_NAME" --worker=all --command="rm -rf ~/$(printf '%q' "$REMOTE_REPO")" &&
    gcloud_tpu scp --recurse "$stage/$REMOTE_REPO" "$TPU_NAME:" --worker=all ||
    rc="$?"
  rm -rf "$stage"
  return "$rc"
}

stage_repo() {
  git -C "$REPO_ROOT" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [[ -e "$REPO_ROOT/$f" ]]; then printf '%s\0' "$f"; fi
    done |
    tar -C "$REPO_ROOT" --null -T - -cf - | tar -C "$1" -xf -
}

cmd_setup() {
  require_bucket
  log "copying the repo to all workers of $TPU_NAME"
  copy_repo || return
  log "installing jaxgan + jax[tpu], mounting gs://$BUCKET at $MOUNT_DIR"
  on_workers all remote_setup "$BUCKET" "$MOUNT_DIR" "$REMOTE_REPO" "$REMOTE_VENV" \
    "$PYTHON_VERSION"
}

cmd_run() {
  require_bucket
  local extra=()
  read -r -a extra <<<"$EXTRA_FLAGS"
  log "training on all workers: workdir $MOUNT_DIR/$RUN_NAME ($(workdir_url))"
  on_workers all remote_run "$REMOTE_REPO" "$REMOTE_VENV" "$MOUNT_DIR" "$RUN_NAME" \
    --config="$CONFIG" "${extra[@]}"
}

cmd_status() {
  require_bucket
  local p latest num_steps
  echo "TPU $TPU_NAME: $(tpu_state)"
  if p="$(progress "$(workdir_url)")"; then
    read -r latest num_steps <<<"$p"
    echo "run $(workdir_url): checkpoint step $latest of $num_steps"
  else
    echo "run $(workdir_url): not started (no config.json)"
  fi
}

cmd_is_finished() {
  local target="${1:-}" p latest num_steps
  if [[ -z "$target" ]]; then
    require_bucket
    target="$(workdir_url)"
  fi
  if ! p="$(progress "$target")"; then
    echo "not finished: $target has no config.json yet"
    return 1
  fi
  read -r latest num_steps <<<"$p"
  if ((latest >= num_steps)); then
    echo "finished: checkpoint step $latest of $num_steps"
  else
    echo "not finished: checkpoint step $latest of $num_steps"
    return 1
  fi
}

cmd_resume_loop() {
  require_bucket
  local state failures=0 set_up=0 rc
  while true; do
    if is_finished "$(workdir_url)"; then
      log "$(cmd_is_finished)"
      if [[ "$DELETE_WHEN_DONE" == 1 ]]; then
        log "deleting $TPU_NAME (DELETE_WHEN_DONE=1); the run stays in $(workdir_url)"
        gcloud_tpu delete "$TPU_NAME" --quiet
      fi
      return 0
    fi
    state="$(tpu_state)"
    log "TPU $TPU_NAME: $state"
    case "$state" in
      READY) ;;
      GONE | PREEMPTED | TERMINATED | STOPPED)
        # A Spot or preemptible TPU cannot be restarted: delete it and create a new one.
        if [[ "$state" != GONE ]]; then gcloud_tpu delete "$TPU_NAME" --quiet || true; fi
        if ! cmd_create; then
          log "create failed (no capacity?); retrying in ${POLL_SECONDS}s"
          sleep "$POLL_SECONDS"
          continue
        fi
        set_up=0
        ;;
      *) # CREATING, DELETING, REPAIRING, ... or a failed describe: wait
        sleep "$POLL_SECONDS"
        continue
        ;;
    esac
    if [[ "$set_up" == 0 ]]; then
      # Also on the first pass: setup is idempotent, and the TPU may be new.
      if ! cmd_setup; then
        log "setup failed; retrying in ${POLL_SECONDS}s"
        sleep "$POLL_SECONDS"
        continue
      fi
      set_up=1
    fi
    rc=0
    cmd_run || rc="$?"
    if [[ "$rc" == 0 ]]; then
      failures=0 # exit 0 is also what SIGTERM gives: the finish check decides
    elif [[ "$(tpu_state)" == READY ]]; then
      failures="$((failures + 1))"
      log "run failed (exit $rc) on a READY TPU ($failures of $MAX_RUN_FAILURES)"
      if ((failures >= MAX_RUN_FAILURES)); then
        log "giving up: see launch/tpu_vm.sh logs"
        return 1
      fi
    fi
    sleep "$POLL_SECONDS"
  done
}

cmd_fetch() {
  require_bucket
  mkdir -p "$FETCH_DIR"
  log "copying $(workdir_url) (without checkpoints) to $FETCH_DIR"
  gcloud storage rsync --recursive --exclude='^checkpoints/' "$(workdir_url)" "$FETCH_DIR"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    create) cmd_create ;;
    setup) cmd_setup ;;
    run) cmd_run ;;
    stop) on_workers all remote_stop "$RUN_NAME" ;;
    logs) on_workers 0 remote_logs "$RUN_NAME" "${LINES_SHOWN:-40}" ;;
    status) cmd_status ;;
    resume-loop) cmd_resume_loop ;;
    is-finished) cmd_is_finished "$@" ;;
    fetch) cmd_fetch ;;
    delete) gcloud_tpu delete "$TPU_NAME" --quiet ;;
    -h | --help | help)
      usage
      return 0
      ;;
    *)
      usage
      [[ -z "$cmd" ]] || echo "tpu_vm.sh: error: unknown command: $cmd" >&2
      return 2
      ;;
  esac
}

main "$@"
