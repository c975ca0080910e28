# shellcheck shell=bash
# Bubblewrap for the checker sandbox (python/stp/verify/sandbox.py), sourced by scripts/dev-setup.sh
# and scripts/setup.sh so the developer and the user command install and check it the same way.
#
# stp_bwrap_setup [--dry-run]
#   1. bwrap missing: as root with apt-get, `apt-get update` then `apt-get install -y bubblewrap`;
#      otherwise one line naming the command that installs it (return 1).
#   2. bwrap present: run it with the namespaces the sandbox uses. Installed is not enough: Ubuntu
#      24.04 lets AppArmor block unprivileged user namespaces
#      (kernel.apparmor_restrict_unprivileged_userns = 1), older Debian kernels switch them off
#      (kernel.unprivileged_userns_clone = 0), and user.max_user_namespaces = 0 does the same; for
#      a non-root user bwrap then fails. Each case gets one line naming its fix (return 1).
# Messages for the caller's log go to stdout; the one failure line goes to stderr and starts with
# "bubblewrap:". STP_PROC_SYS (default /proc/sys) lets the tests stand in a fake /proc/sys.

# The namespaces and mounts the sandbox asks for, on a read-only view of /.
stp_bwrap_probe() {
  bwrap --ro-bind / / --proc /proc --dev /dev --tmpfs /tmp --unshare-net --unshare-pid \
    --unshare-ipc --unshare-uts --die-with-parent --new-session true
}

# The command that installs bubblewrap with this machine's package manager.
stp_bwrap_install_hint() {
  if command -v apt-get >/dev/null 2>&1; then echo "sudo apt-get install bubblewrap"
  elif command -v dnf >/dev/null 2>&1; then echo "sudo dnf install bubblewrap"
  elif command -v yum >/dev/null 2>&1; then echo "sudo yum install bubblewrap"
  elif command -v pacman >/dev/null 2>&1; then echo "sudo pacman -S bubblewrap"
  elif command -v zypper >/dev/null 2>&1; then echo "sudo zypper install bubblewrap"
  elif command -v apk >/dev/null 2>&1; then echo "sudo apk add bubblewrap"
  else echo "your package manager (the package is called bubblewrap)"
  fi
}

stp_bwrap_setup() {
  local dry_run=0 sys="${STP_PROC_SYS:-/proc/sys}" uid log err bwrap_path
  [[ "${1:-}" == "--dry-run" ]] && dry_run=1
  uid="$(id -u)"
  if [[ "$(uname -s)" != "Linux" ]]; then
    echo "bubblewrap: the checker sandbox needs Linux (bubblewrap does not exist on $(uname -s)); run the verifier on Linux or with verifier.sandbox = \"none\"" >&2
    return 1
  fi
  if ! command -v bwrap >/dev/null 2>&1; then
    if [[ "$uid" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
      echo "    \$ apt-get update && apt-get install -y bubblewrap"
      [[ $dry_run -eq 1 ]] && return 0
      log="$(mktemp)"
      if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } \
          >"$log" 2>&1; then
        tail -n 5 "$log" >&2
        rm -f "$log"
        echo "bubblewrap: apt-get could not install bubblewrap (apt-get's last lines are above)" >&2
        return 1
      fi
      rm -f "$log"
      command -v bwrap >/dev/null 2>&1 \
        || { echo "bubblewrap: apt-get installed bubblewrap but bwrap is not on PATH" >&2; return 1; }
    else
      [[ $dry_run -eq 1 ]] && { echo "    (would need bwrap: not found; install it with: $(stp_bwrap_install_hint))"; return 0; }
      echo "bubblewrap: bwrap is not installed (the checker sandbox and its tests need it); install it with: $(stp_bwrap_install_hint)" >&2
      return 1
    fi
  fi
  bwrap_path="$(command -v bwrap)"
  [[ $dry_run -eq 1 ]] && { echo "    bwrap: $bwrap_path (checked when not a dry run)"; return 0; }
  if err="$(stp_bwrap_probe 2>&1)"; then
    echo "    bwrap works: $bwrap_path"
    return 0
  fi
  err="$(printf '%s' "$err" | head -n 1)"
  if [[ "$uid" -ne 0 && "$(cat "$sys/kernel/apparmor_restrict_unprivileged_userns" 2>/dev/null)" == "1" ]]; then
    echo "bubblewrap: bwrap cannot create user namespaces: AppArmor restricts them for unprivileged users (kernel.apparmor_restrict_unprivileged_userns = 1, Ubuntu 24.04); fix: allow bwrap with an AppArmor profile: printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile bwrap $bwrap_path flags=(unconfined) {\\n  userns,\\n}\\n' | sudo tee /etc/apparmor.d/bwrap && sudo apparmor_parser -r /etc/apparmor.d/bwrap (bwrap said: $err)" >&2
  elif [[ "$uid" -ne 0 && "$(cat "$sys/kernel/unprivileged_userns_clone" 2>/dev/null)" == "0" ]]; then
    echo "bubblewrap: bwrap cannot create user namespaces: the kernel disables them for unprivileged users (kernel.unprivileged_userns_clone = 0); fix: sudo sysctl -w kernel.unprivileged_userns_clone=1 (bwrap said: $err)" >&2
  elif [[ "$(cat "$sys/user/max_user_namespaces" 2>/dev/null)" == "0" ]]; then
    echo "bubblewrap: bwrap cannot create user namespaces: user.max_user_namespaces = 0; fix: sudo sysctl -w user.max_user_namespaces=15000 (bwrap said: $err)" >&2
  else
    echo "bubblewrap: $bwrap_path is installed but cannot start the sandbox: $err" >&2
  fi
  return 1
}
