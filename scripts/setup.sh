#!/usr/bin/env bash
# STP user set-up: Lean (elan + the toolchain pinned in lean-toolchain), the Mathlib build cache,
# our Lean programs (lake build), and the Python environment (.venv with the package installed).
# Safe to re-run: every step skips or finishes quickly when its work is already done.
#
#   bash scripts/setup.sh              # GPU machine: extras cluster,train,gpu (vLLM)
#   bash scripts/setup.sh --cpu        # CPU only: transformers sampler, CPU torch wheel
#   bash scripts/setup.sh --tpu        # TPU VM: JAX TPU wheels
#   bash scripts/setup.sh --dry-run    # print the steps without running them
#
# Options: --extras LIST (pip extras, overrides the above), --skip-lean, --skip-python,
#          --venv DIR (default .venv), --python EXE (default python3), -h/--help.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ELAN_INIT_URL="https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"

DRY_RUN=0
SKIP_LEAN=0
SKIP_PYTHON=0
PROFILE="gpu"
EXTRAS=""
VENV="$REPO/.venv"
PYTHON="python3"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --cpu) PROFILE="cpu" ;;
    --tpu) PROFILE="tpu" ;;
    --gpu) PROFILE="gpu" ;;
    --extras) [[ $# -ge 2 ]] || { echo "setup: --extras needs a value" >&2; exit 2; }; EXTRAS="$2"; shift ;;
    --extras=*) EXTRAS="${1#*=}" ;;
    --venv) [[ $# -ge 2 ]] || { echo "setup: --venv needs a value" >&2; exit 2; }; VENV="$2"; shift ;;
    --python) [[ $# -ge 2 ]] || { echo "setup: --python needs a value" >&2; exit 2; }; PYTHON="$2"; shift ;;
    --skip-lean) SKIP_LEAN=1 ;;
    --skip-python) SKIP_PYTHON=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [[ -z "$EXTRAS" ]]; then
  case "$PROFILE" in
    gpu) EXTRAS="cluster,train,gpu" ;;
    cpu) EXTRAS="cluster,train,hf" ;;
    tpu) EXTRAS="cluster,train,tpu" ;;
  esac
fi

STEP=0
step() { STEP=$((STEP + 1)); printf '\n==> step %d: %s\n' "$STEP" "$*"; }
fail() { printf '\nsetup: step %d failed: %s\n' "$STEP" "$*" >&2; exit 1; }
# Run a command, or only show it under --dry-run.
run() {
  printf '    $ %s\n' "$*"
  [[ $DRY_RUN -eq 1 ]] || "$@"
}
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ $DRY_RUN -eq 1 ]] && { echo "    (would need '$1': not found)"; return 0; }
  fail "'$1' is not installed; $2"
}
network_hint="check the network connection (and HTTPS_PROXY if you are behind a proxy), then re-run"

cd "$REPO"
[[ $DRY_RUN -eq 1 ]] && echo "setup: dry run: showing the steps, changing nothing"
echo "setup: repository $REPO; Python extras [$EXTRAS]"

if [[ $SKIP_LEAN -eq 0 ]]; then
  step "check prerequisites (lean-toolchain, curl, git)"
  [[ -f lean-toolchain ]] || fail "lean-toolchain is missing at $REPO (is this an STP checkout?)"
  TOOLCHAIN="$(tr -d '[:space:]' < lean-toolchain)"
  [[ -n "$TOOLCHAIN" ]] || fail "lean-toolchain is empty"
  echo "    toolchain pinned by lean-toolchain: $TOOLCHAIN"
  need curl "install it with your package manager (e.g. apt-get install curl)"
  need git "install it with your package manager (e.g. apt-get install git)"

  step "install elan, the Lean version manager"
  export PATH="$HOME/.elan/bin:$PATH"
  if command -v elan >/dev/null 2>&1; then
    echo "    elan already installed: $(elan --version)"
  else
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    run curl -sSfL --retry 3 -o "$tmp/elan-init.sh" "$ELAN_INIT_URL" \
      || fail "could not download elan-init.sh from $ELAN_INIT_URL; $network_hint"
    run sh "$tmp/elan-init.sh" -y --default-toolchain none \
      || fail "the elan installer failed (see its output above)"
  fi

  step "install the pinned Lean toolchain $TOOLCHAIN"
  run elan toolchain install "$TOOLCHAIN" \
    || fail "could not install $TOOLCHAIN; $network_hint"

  step "fetch the prebuilt Mathlib cache (lake exe cache get)"
  run lake exe cache get \
    || fail "'lake exe cache get' failed; $network_hint (without it Mathlib builds from source for hours)"

  step "build the STP Lean programs (lake build)"
  run lake build || fail "'lake build' failed (see the Lean errors above)"
else
  echo "setup: skipping the Lean steps (--skip-lean)"
fi

if [[ $SKIP_PYTHON -eq 0 ]]; then
  step "create the Python environment $VENV"
  need "$PYTHON" "install Python 3.11 or newer"
  if [[ $DRY_RUN -eq 0 ]]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || fail "Python >= 3.11 is required, found $("$PYTHON" --version 2>&1)"
  fi
  if [[ -x "$VENV/bin/python" ]]; then
    echo "    reusing $VENV"
  else
    run "$PYTHON" -m venv "$VENV" || fail "could not create a virtual environment at $VENV"
  fi

  if [[ ",$EXTRAS," == *",hf,"* ]]; then
    step "install the CPU build of torch (avoids the multi-GB CUDA wheel)"
    run "$VENV/bin/python" -m pip install --extra-index-url "$TORCH_CPU_INDEX" torch \
      || fail "installing torch failed; $network_hint"
  fi

  step "install the stp package with extras [$EXTRAS]"
  run "$VENV/bin/python" -m pip install -e ".[$EXTRAS]" \
    || fail "pip install failed; $network_hint"
else
  echo "setup: skipping the Python steps (--skip-python)"
fi

printf '\nsetup: done%s. Next:\n' "$([[ $DRY_RUN -eq 1 ]] && echo ' (dry run)')"
echo "  source ${VENV#"$REPO"/}/bin/activate"
echo "  python -m stp.selfplay --config configs/stp-7b.toml"
