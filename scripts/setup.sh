#!/usr/bin/env bash
# STP user set-up: Lean (elan + the toolchain pinned in lean-toolchain), the Mathlib build cache,
# our Lean programs (lake build), bubblewrap for the checker sandbox, and the Python environment
# (.venv with the package installed). Safe to re-run: every step skips or finishes quickly when its
# work is already done. What can be checked in seconds is checked first (Python, the NVIDIA driver
# for the GPU profile, bubblewrap), before the minutes of Lean downloads.
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
# The GPU stack's wheels (torch 2.11 cu13, the nvidia-*-cu13 libraries, jax-cuda13-plugin) are
# CUDA 13.0 builds. NVIDIA's minimum Linux driver for CUDA 13.0 is 580.65.06 (CUDA 13.0 release
# notes, "CUDA Toolkit and Corresponding Driver Versions"; minor-version compatibility covers all
# 13.x with a >= 580 driver).
CUDA13_MIN_DRIVER="580.65.06"
# shellcheck source=lib/bubblewrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bubblewrap.sh"

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

# Run a long command with its output shown and kept; on failure, the last error lines of that
# output become the reason of the failure (pip's own "ERROR: ..." rather than a guess).
LOG=""
run_logged() {
  printf '    $ %s\n' "$*"
  [[ $DRY_RUN -eq 1 ]] && return 0
  LOG="$(mktemp)"
  set +e
  "$@" 2>&1 | tee "$LOG"
  local status=${PIPESTATUS[0]}
  set -e
  return "$status"
}
# The lines of the last run_logged output that say what went wrong, on one line.
log_reason() {
  local reason
  reason="$(grep -E '^(ERROR|error|E:|fatal|curl: )' "$LOG" 2>/dev/null | awk '!seen[$0]++' \
    | tail -n 3 | tr '\n' ' ' || true)"
  [[ -n "$reason" ]] || reason="$(grep -v '^[[:space:]]*$' "$LOG" 2>/dev/null | tail -n 1 || true)"
  printf '%s' "${reason% }"
}

# "580.65.06" >= "580.65.06"? Compares dotted numbers field by field.
version_ge() {
  local IFS=.
  local -a a=($1) b=($2)
  local i
  for ((i = 0; i < ${#b[@]} || i < ${#a[@]}; i++)); do
    local x=$((10#${a[i]:-0})) y=$((10#${b[i]:-0}))
    ((x > y)) && return 0
    ((x < y)) && return 1
  done
  return 0
}

cd "$REPO"
[[ $DRY_RUN -eq 1 ]] && echo "setup: dry run: showing the steps, changing nothing"
echo "setup: repository $REPO; profile $PROFILE; Python extras [$EXTRAS]${CONSTRAINTS:+ pinned by $CONSTRAINTS}"
[[ -z "$PROFILE_NOTE" ]] || echo "setup: $PROFILE_NOTE"

if [[ $SKIP_PYTHON -eq 0 ]]; then
  step "check Python (>= 3.11, with venv and pip) before the long steps"
  need "$PYTHON" "install Python 3.11 or newer (or pass --python EXE)"
  if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || fail "Python >= 3.11 is required, found $("$PYTHON" --version 2>&1) ($PYTHON); pass --python EXE"
    py_minor="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [[ ! -x "$VENV/bin/python" ]]; then
      "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
        || fail "$PYTHON has no venv/ensurepip module (Debian and Ubuntu split it out): sudo apt-get install python$py_minor-venv"
    fi
    echo "    $("$PYTHON" --version 2>&1) at $(command -v "$PYTHON")"
  fi
  if [[ -x "$VENV/bin/python" ]]; then
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
      || fail "$VENV holds $("$VENV/bin/python" --version 2>&1); Python >= 3.11 is required: delete $VENV (or pass --venv DIR) and re-run"
  fi
fi

if [[ "$PROFILE" == "gpu" && $SKIP_PYTHON -eq 0 ]]; then
  step "check the NVIDIA driver (the CUDA 13 wheels need >= $CUDA13_MIN_DRIVER)"
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    [[ $DRY_RUN -eq 1 ]] && echo "    (would need nvidia-smi: not found)" \
      || fail "nvidia-smi not found: install the NVIDIA driver >= $CUDA13_MIN_DRIVER, or use --cpu or --tpu"
  else
    set +e
    smi_out="$(nvidia-smi --query-gpu=driver_version,name --format=csv,noheader 2>&1)"
    smi_status=$?
    set -e
    driver="$(printf '%s\n' "$smi_out" | head -n 1 | cut -d, -f1 | tr -d '[:space:]')"
    if [[ $smi_status -ne 0 || ! "$driver" =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
      reason="$(printf '%s' "$smi_out" | head -n 1)"
      [[ $DRY_RUN -eq 1 ]] && echo "    (nvidia-smi gives no driver version: ${reason:-no output})" \
        || fail "nvidia-smi cannot read the driver version (exit $smi_status): ${reason:-no output}; is the NVIDIA driver loaded?"
    elif version_ge "$driver" "$CUDA13_MIN_DRIVER"; then
      echo "    driver $driver ($(printf '%s\n' "$smi_out" | head -n 1 | cut -d, -f2- | sed 's/^ *//')): CUDA 13 OK"
    else
      fail "NVIDIA driver $driver is older than $CUDA13_MIN_DRIVER, the minimum for the CUDA 13 builds of torch, vLLM and JAX in constraints/gpu.txt: upgrade the driver (e.g. sudo apt-get install nvidia-driver-580 or newer)"
    fi
  fi
fi

if [[ $SKIP_LEAN -eq 0 && "$(uname -s)" != "Linux" ]]; then
  echo "setup: no bubblewrap on $(uname -s): the checker runs without its sandbox here (verifier.sandbox = \"auto\" warns once); verify on Linux for the sandbox"
elif [[ $SKIP_LEAN -eq 0 ]]; then
  # The checker runs under bubblewrap by default (verifier.sandbox = "auto").
  step "bubblewrap for the checker sandbox (installed if missing, then started once)"
  bwrap_flags=()
  [[ $DRY_RUN -eq 1 ]] && bwrap_flags=(--dry-run)
  bwrap_err="$(mktemp)"
  if ! stp_bwrap_setup "${bwrap_flags[@]}" 2>"$bwrap_err"; then
    head -n -1 "$bwrap_err" >&2
    reason="$(tail -n 1 "$bwrap_err")"
    rm -f "$bwrap_err"
    fail "${reason#bubblewrap: }"
  fi
  rm -f "$bwrap_err"
fi

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
    run_logged curl -sSfL --retry 3 -o "$tmp/elan-init.sh" "$ELAN_INIT_URL" \
      || fail "could not download elan-init.sh from $ELAN_INIT_URL ($(log_reason)); $network_hint"
    run sh "$tmp/elan-init.sh" -y --default-toolchain none \
      || fail "the elan installer failed (see its output above)"
  fi

  step "install the pinned Lean toolchain $TOOLCHAIN"
  run_logged elan toolchain install "$TOOLCHAIN" \
    || fail "could not install $TOOLCHAIN: elan said: $(log_reason)"

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
  if [[ -x "$VENV/bin/python" ]]; then
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
    run_logged "$VENV/bin/python" -m pip install "${pin[@]}" --extra-index-url "$TORCH_CPU_INDEX" torch \
      || fail "installing torch failed: pip said: $(log_reason)"
  fi

  step "install the stp package with extras [$EXTRAS]"
  run_logged "$VENV/bin/python" -m pip install "${pin[@]}" -e ".[$EXTRAS]" \
    || fail "pip install failed: pip said: $(log_reason)"
else
  echo "setup: skipping the Python steps (--skip-python)"
fi

printf '\nsetup: done%s. Next:\n' "$([[ $DRY_RUN -eq 1 ]] && echo ' (dry run)')"
echo "  source ${VENV#"$REPO"/}/bin/activate"
echo "  python -m stp.pipeline --config $NEXT_CONFIG"
