#!/usr/bin/env bash
# Developer set-up: bubblewrap for the checker sandbox, and a virtual environment with the CPU test
# stack (constraints/cpu-test.txt) and the package installed editable with its test extra. No Lean,
# no GPU. The README's developer command and .ci/run both call this script, so a contributor and CI
# get the same environment.
#
# bubblewrap: installed with apt-get when this runs as root, else one line names the command; then
# bwrap is run with the sandbox's namespaces (Ubuntu 24.04's AppArmor restriction on unprivileged
# user namespaces is recognised and its fix named). A problem there does not stop the Python
# install, but the script then ends with that line and exit status 1 (the tests need bwrap).
#
#   bash scripts/dev-setup.sh                  # .venv in the checkout (reused if it is Python >= 3.11)
#   bash scripts/dev-setup.sh --venv DIR       # another location
#   bash scripts/dev-setup.sh --recreate       # delete the venv first
#
# torch comes from the PyTorch CPU wheel index when it answers (STP_TORCH_INDEX, default
# https://download.pytorch.org/whl/cpu). When it does not, the index is left out entirely (pip
# would otherwise retry it five times for every package, about five minutes, and then take the
# multi-GB CUDA build from PyPI) and the newest CPU build of torch that the configured pip indexes
# offer is used instead, with a note that it differs from the lock's pin. A CUDA build of torch
# is refused. Environment: PYTHON (default python3), STP_TORCH_INDEX, STP_PROBE_TIMEOUT_S (5).
set -euo pipefail
# shellcheck source=lib/bubblewrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bubblewrap.sh"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$REPO/constraints/cpu-test.txt"
VENV="$REPO/.venv"
PYTHON="${PYTHON:-python3}"
TORCH_INDEX="${STP_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
PROBE_TIMEOUT_S="${STP_PROBE_TIMEOUT_S:-5}"
RECREATE=0

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"; }
die() { printf 'dev-setup: error: %s\n' "$*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) [[ $# -ge 2 ]] || { echo "dev-setup: --venv needs a value" >&2; exit 2; }; VENV="$2"; shift ;;
    --venv=*) VENV="${1#*=}" ;;
    --recreate) RECREATE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "dev-setup: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

start=$SECONDS
step() { printf '==> [%4ss] %s\n' "$((SECONDS - start))" "$*"; }
# pip prints one "Location ... is ignored" line per package for local mirrors that lack it.
quiet_pip() {
  "$VENV/bin/python" -m pip "$@" --progress-bar off 2>&1 \
    | { grep -v -E "^WARNING: Location '.*' is ignored" || true; }
  return "${PIPESTATUS[0]}"
}
py_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

[[ -f "$LOCK" ]] || die "$LOCK is missing (is this an STP checkout?)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (Python >= 3.11 is required)"
py_ok "$PYTHON" || die "Python >= 3.11 is required, found $("$PYTHON" --version 2>&1)"

step "bubblewrap (the checker sandbox; its tests run it)"
BWRAP_PROBLEM=""
bwrap_err="$(mktemp)"
if ! stp_bwrap_setup 2>"$bwrap_err"; then
  BWRAP_PROBLEM="$(tail -n 1 "$bwrap_err")"
  cat "$bwrap_err" >&2
fi
rm -f "$bwrap_err"

if [[ $RECREATE -eq 1 ]]; then rm -rf "$VENV"; fi
if [[ -x "$VENV/bin/python" ]]; then
  py_ok "$VENV/bin/python" \
    || die "$VENV holds $("$VENV/bin/python" --version 2>&1); Python >= 3.11 is required (re-run with --recreate)"
  step "reusing $VENV ($("$VENV/bin/python" --version 2>&1))"
else
  step "virtual environment $VENV ($("$PYTHON" --version 2>&1))"
  "$PYTHON" -m venv "$VENV" || die "could not create a virtual environment at $VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# The lock is resolved for the Pythons its header names (scripts/locks.py); say so when this is
# another one, since pip may then need versions the lock does not pin.
VENV_PY="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
LOCK_PYTHONS="$(sed -n -E 's/^# .* pinned for Python ([0-9., ]+) on .*/\1/p' "$LOCK" | head -n 1)"
if [[ -n "$LOCK_PYTHONS" && ", $LOCK_PYTHONS," != *", $VENV_PY,"* ]]; then
  echo "note: constraints/cpu-test.txt is resolved for Python $LOCK_PYTHONS, not $VENV_PY"
fi

# The lock's torch pin, e.g. "2.11.0".
LOCK_TORCH="$(sed -n -E 's/^torch==([^ ;#]+).*/\1/p' "$LOCK" | head -n 1)"
[[ -n "$LOCK_TORCH" ]] || die "$LOCK pins no torch version"

# Probe the CPU index: one HTTPS request with a short timeout instead of pip's retries.
probe() {
  "$VENV/bin/python" - "$1" "$PROBE_TIMEOUT_S" <<'PY' 2>/dev/null
import sys, urllib.request
url = sys.argv[1].rstrip("/") + "/torch/"
try:
    with urllib.request.urlopen(url, timeout=float(sys.argv[2])) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

constraints="$LOCK"
torch_args=()
if probe "$TORCH_INDEX"; then
  step "torch $LOCK_TORCH (CPU build) from $TORCH_INDEX"
  # The +cpu local version sorts above PyPI's CUDA build of the same version, so pip takes it.
  torch_args=("torch==$LOCK_TORCH" --extra-index-url "$TORCH_INDEX")
else
  step "the PyTorch CPU index $TORCH_INDEX does not answer; using the configured pip indexes only"
  # Which CPU builds do they offer? Linux wheels on PyPI are CUDA builds; CPU builds carry +cpu.
  versions="$("$VENV/bin/python" -m pip index versions torch 2>/dev/null \
    | sed -n -E 's/^Available versions: //p' | tr -d ' ' | tr ',' '\n' || true)"
  if [[ "$(uname -s)" != "Linux" ]]; then
    chosen="$LOCK_TORCH"  # macOS/Windows wheels on PyPI are CPU builds
  elif grep -qx "$LOCK_TORCH+cpu" <<<"$versions"; then
    chosen="$LOCK_TORCH+cpu"
  else
    chosen="$(grep -E '\+cpu$' <<<"$versions" | head -n 1 || true)"
  fi
  [[ -n "$chosen" ]] || die "no CPU build of torch is reachable (the PyTorch CPU index does not \
answer and the configured pip indexes offer only CUDA builds); set STP_TORCH_INDEX to a reachable \
CPU wheel index or mirror"
  if [[ "${chosen%+cpu}" != "$LOCK_TORCH" ]]; then
    echo "note: torch $chosen instead of the lock's $LOCK_TORCH (the only CPU builds reachable)"
  fi
  torch_args=("torch==$chosen")
  # The rest of the lock still applies; only its torch pin is replaced.
  constraints="$VENV/stp-constraints.txt"
  grep -v -E '^torch==' "$LOCK" > "$constraints"
fi
quiet_pip install -c "$constraints" "${torch_args[@]}" || die "installing torch failed"
"$VENV/bin/python" -c 'import sys, torch
print("    torch", torch.__version__)
sys.exit(0 if torch.version.cuda is None else
         f"dev-setup: error: torch {torch.__version__} is a CUDA build; set STP_TORCH_INDEX to a CPU wheel index")'

step "pip install -c constraints/cpu-test.txt -e '.[test]'"
quiet_pip install -c "$constraints" -e "$REPO[test]" || die "pip install -e .[test] failed"
if [[ -n "$BWRAP_PROBLEM" ]]; then
  printf 'dev-setup: %s is ready, but the sandbox tests will fail until this is fixed:\n%s\n' \
    "$VENV" "$BWRAP_PROBLEM" >&2
  exit 1
fi
step "done: $VENV ready (activate it with: . ${VENV#"$REPO"/}/bin/activate)"
