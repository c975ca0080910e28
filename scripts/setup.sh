#!/usr/bin/env bash
# STP user set-up: Lean (elan + the toolchain pinned in lean-toolchain), the Mathlib build cache,
# our Lean programs (lake build), and the Python environment (.venv with the package installed).
# Safe to re-run: every step skips or finishes quickly when its work is already done.
#
#   bash scripts/setup.sh              # GPU profile when nvidia-smi is present, else the CPU profile
#   bash scripts/setup.sh --gpu        # GPU machine: extras cluster,train,gpu (vLLM), constraints/gpu.txt
#   bash scripts/setup.sh --cpu        # CPU only: transformers sampler, CPU torch wheel,
#                                      #   constraints/cpu-test.txt
#   bash scripts/setup.sh --tpu        # TPU VM: JAX TPU wheels + vllm-tpu, constraints/tpu.txt
#   bash scripts/setup.sh --dry-run    # print the steps without running them
#
# Options: --extras LIST (pip extras, overrides the profile's; no constraints file then),
#          --skip-lean, --skip-python, --venv DIR (default .venv), --python EXE (default python3),
#          -h/--help.
#
# Expect on first run (estimates, a fast connection): Lake clones Mathlib and its dependencies
# (git, about 1 GB), `lake exe cache get` downloads about 4,500 prebuilt files (about 1 GB,
# unpacked about 5 GB) in 5-20 minutes; the Python stack is 1-2 GB (GPU: about 8 GB with CUDA).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ELAN_INIT_URL="https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"

DRY_RUN=0
SKIP_LEAN=0
SKIP_PYTHON=0
PROFILE="auto"
EXTRAS=""
VENV="$REPO/.venv"
PYTHON="python3"

# The header comment, without the shebang and without the code after it.
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }

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

PROFILE_NOTE=""
if [[ "$PROFILE" == "auto" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    PROFILE="gpu"
  else
    PROFILE="cpu"
    PROFILE_NOTE="no nvidia-smi on this machine: CPU profile (pass --gpu or --tpu to choose)"
  fi
fi
CONSTRAINTS=""
if [[ -z "$EXTRAS" ]]; then
  case "$PROFILE" in
    gpu) EXTRAS="cluster,train,gpu"; CONSTRAINTS="constraints/gpu.txt" ;;
    cpu) EXTRAS="cluster,train,hf"; CONSTRAINTS="constraints/cpu-test.txt" ;;
    tpu) EXTRAS="cluster,train,tpu"; CONSTRAINTS="constraints/tpu.txt" ;;
  esac
fi
case "$PROFILE" in
  gpu) NEXT_CONFIG="configs/stp-7b.toml" ;;
  tpu) NEXT_CONFIG="configs/stp-7b.toml   # on TPU: vllm-tpu samples, Levanter trains" ;;
  cpu) NEXT_CONFIG="configs/tiny-cpu.toml   # after: python -m stp.model.tiny runs/tiny-cpu/tiny-model" ;;
esac

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
echo "setup: repository $REPO; profile $PROFILE; Python extras [$EXTRAS]${CONSTRAINTS:+ pinned by $CONSTRAINTS}"
[[ -z "$PROFILE_NOTE" ]] || echo "setup: $PROFILE_NOTE"

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

  # The rev line just above `"name": "mathlib"` in the manifest.
  MATHLIB_REV="$(grep -B1 '"name": "mathlib"' lake-manifest.json 2>/dev/null \
    | sed -n -E 's/.*"rev": *"([0-9a-f]{40})".*/\1/p' | head -n 1 || true)"
  step "fetch Mathlib ${MATHLIB_REV:0:12} and its prebuilt cache (lake exe cache get)"
  echo "    expect (estimate): a git clone of about 1 GB, then about 4,500 files (about 1 GB, 5 GB"
  echo "    unpacked); 5-20 minutes on a fast connection, seconds when already done"
  cache_log="$(mktemp)"
  if [[ $DRY_RUN -eq 1 ]]; then
    run lake exe cache get
  else
    printf '    $ %s\n' "lake exe cache get"
    set +e
    lake exe cache get 2>&1 | tee "$cache_log"
    status=${PIPESTATUS[0]}
    set -e
    [[ $status -eq 0 ]] || fail "'lake exe cache get' failed (exit $status); $network_hint"
    # Mathlib's cache tool exits 0 when files are missing on the server (HTTP 404).
    if grep -q "some files were not found in the cache" "$cache_log"; then
      fail "the Mathlib cache has no prebuilt files for the pinned commit ${MATHLIB_REV:-(see lake-manifest.json)}; this is not a network problem: building Mathlib from source ('lake build Mathlib') takes hours on many cores, or pin a Mathlib commit that has a cache (docs/lean.md)"
    fi
  fi
  rm -f "$cache_log"

  step "build the STP Lean programs (lake build)"
  run lake build || fail "'lake build' failed (see the Lean errors above)"

  # `lake build` builds only our programs, and the cache tool can exit 0 with files missing, so
  # only elaborating a file that imports Mathlib proves the checker will find a usable Mathlib.
  step "check that Mathlib is usable (elaborate a file that imports Mathlib)"
  check_dir="$(mktemp -d)"
  printf 'import Mathlib\nexample : (2 : ℕ) + 2 = 4 := by norm_num\n' > "$check_dir/MathlibCheck.lean"
  run lake env lean "$check_dir/MathlibCheck.lean" \
    || fail "Mathlib is not usable: a file importing Mathlib does not elaborate (see the errors above). Re-run 'lake exe cache get'; if files stay missing, the cache lacks this commit and 'lake build Mathlib' builds it from source (hours)"
  rm -rf "$check_dir"
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
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
      || fail "$VENV holds $("$VENV/bin/python" --version 2>&1); Python >= 3.11 is required: delete $VENV (or pass --venv DIR) and re-run"
    echo "    reusing $VENV ($("$VENV/bin/python" --version 2>&1))"
  else
    run "$PYTHON" -m venv "$VENV" || fail "could not create a virtual environment at $VENV"
  fi

  pin=()
  [[ -z "$CONSTRAINTS" ]] || pin=(-c "$CONSTRAINTS")
  # On a TPU VM torch (for vllm-tpu's torchax) must be the CPU build, not PyPI's CUDA wheel.
  [[ "$PROFILE" != "tpu" ]] || pin+=(--extra-index-url "$TORCH_CPU_INDEX")
  if [[ ",$EXTRAS," == *",hf,"* && "$PROFILE" == "cpu" ]]; then
    step "install the CPU build of torch (avoids the multi-GB CUDA wheel)"
    run "$VENV/bin/python" -m pip install "${pin[@]}" --extra-index-url "$TORCH_CPU_INDEX" torch \
      || fail "installing torch failed; $network_hint"
  fi

  step "install the stp package with extras [$EXTRAS]"
  run "$VENV/bin/python" -m pip install "${pin[@]}" -e ".[$EXTRAS]" \
    || fail "pip install failed; $network_hint"
else
  echo "setup: skipping the Python steps (--skip-python)"
fi

printf '\nsetup: done%s. Next:\n' "$([[ $DRY_RUN -eq 1 ]] && echo ' (dry run)')"
echo "  source ${VENV#"$REPO"/}/bin/activate"
echo "  python -m stp.selfplay --config $NEXT_CONFIG"
