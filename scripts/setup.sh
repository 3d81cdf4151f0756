#!/usr/bin/env bash
# Installs what Berth needs on a Debian machine, only when it is missing, so that a second
# run does nothing slow. Sourced by scripts/run.sh and scripts/test.sh.
#   berth_setup run   — what building and running Berth needs (including buildah, runc
#                       and slirp4netns, which the local engine builds and runs releases with,
#                       and openssh-client for git over ssh and the teams' deploy keys)
#   berth_setup test  — plus what the test suite needs (PostgreSQL binaries, Chromium, Node,
#                       the distribution registry, skopeo, umoci, busybox-static, sshd as a
#                       git host, and schemathesis and moto (the AWS emulator) from
#                       PyPI in virtualenvs under ~/.cache/berth)
set -euo pipefail

berth_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

berth_apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    berth_log "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
      echo "berth: these Debian packages are missing: ${missing[*]}; run this script as root (or install them)" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

berth_setup() {
  local mode="${1:-run}"
  if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  fi
  command -v cargo >/dev/null 2>&1 || { echo "berth: cargo is missing; install Rust with rustup first" >&2; exit 1; }
  berth_apt_install ca-certificates gcc libc6-dev pkg-config git
  # git over ssh runs ssh, and each team's deploy key is made with ssh-keygen.
  berth_apt_install openssh-client
  # The local engine, Berth's default platform, pulls and builds with buildah and runs
  # every release and build step under runc, in a network namespace of its own (iproute2's
  # `ip netns`) wired out by slirp4netns; containers-common ships the seccomp profile.
  # Caddy routes each app's stable address to its serving release.
  berth_apt_install buildah runc slirp4netns iproute2 golang-github-containers-common caddy
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    berth_log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$mode" = run ]; then
    # wasm-opt shrinks the release bundle (npm's binaryen: Debian's breaks hydration).
    berth_setup_binaryen
  fi
  if [ "$mode" = test ]; then
    # initdb/pg_ctl for the throwaway PostgreSQL cluster; Chromium for the browser tests.
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || berth_apt_install postgresql
    berth_apt_install chromium
    # Node.js may come from elsewhere than Debian (its npm then conflicts with Debian's).
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
      berth_apt_install nodejs npm
    fi
    # A real registry (CNCF distribution) and the tools that build and push test images.
    berth_apt_install docker-registry skopeo umoci busybox-static
    # A real SMTP server on loopback for the sign-up confirmation tests.
    berth_apt_install python3-aiosmtpd
    # A real git host over ssh (the tests start sshd themselves, with a git-shell account).
    berth_apt_install openssh-server
    berth_setup_schemathesis
    # moto (PyPI), the AWS emulator the ECR tests mint tokens from.
    berth_setup_moto
  fi
}

# --- schemathesis (the JSON API fuzz step of scripts/test.sh) -------------------------------
# Schemathesis from PyPI, pinned, in a virtualenv of its own under the cache directory; made
# only when missing. The virtualenv is made by a python3 of 3.11.5 or later when the PATH has
# one (Debian bookworm's 3.11.2 has a CPython bug, "AST constructor recursion depth mismatch",
# that Hypothesis inside schemathesis trips over now and then; scripts/schemathesis.sh also
# runs one worker, as threads trigger it in later 3.11s too), else by Debian's python3 and
# python3-venv.
BERTH_SCHEMATHESIS_VERSION="4.32.5"
berth_schemathesis_python() {
  local py
  for py in "$(command -v python3 || true)" /usr/bin/python3; do
    if [ -n "$py" ] && "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11, 5))' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  echo /usr/bin/python3
}
BERTH_SCHEMATHESIS_PYTHON="$(berth_schemathesis_python)"
BERTH_SCHEMATHESIS_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/berth/schemathesis-$BERTH_SCHEMATHESIS_VERSION-py$("$BERTH_SCHEMATHESIS_PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo 3)"
BERTH_SCHEMATHESIS="$BERTH_SCHEMATHESIS_VENV/bin/schemathesis"

berth_setup_schemathesis() {
  if [ -x "$BERTH_SCHEMATHESIS" ] && "$BERTH_SCHEMATHESIS" --version >/dev/null 2>&1; then
    return 0
  fi
  if [ "$BERTH_SCHEMATHESIS_PYTHON" = /usr/bin/python3 ]; then
    berth_apt_install python3 python3-venv
  fi
  berth_log "installing schemathesis $BERTH_SCHEMATHESIS_VERSION (PyPI) into $BERTH_SCHEMATHESIS_VENV"
  rm -rf "$BERTH_SCHEMATHESIS_VENV"
  mkdir -p "$(dirname "$BERTH_SCHEMATHESIS_VENV")"
  "$BERTH_SCHEMATHESIS_PYTHON" -m venv "$BERTH_SCHEMATHESIS_VENV"
  "$BERTH_SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check \
    "schemathesis==$BERTH_SCHEMATHESIS_VERSION"
}
# --- end of schemathesis ----------------------------------------------------------------------

# --- moto (the AWS stand-in of the ECR tests) -----------------------------------------------
# moto[server] from PyPI, pinned, in a virtualenv of its own under the cache directory (made
# only when missing, by the same python as schemathesis). The tests find its bin directory
# through BERTH_MOTO_BIN, which scripts/test.sh exports (testregistry/src/moto.rs; not
# exported here: scripts/run.sh sources this file, and Berth refuses BERTH_* settings it does
# not know), and run its python for boto3.
BERTH_MOTO_VERSION="5.2.5"
BERTH_MOTO_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/berth/moto-$BERTH_MOTO_VERSION-py$("$BERTH_SCHEMATHESIS_PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo 3)"

berth_setup_moto() {
  if [ -x "$BERTH_MOTO_VENV/bin/moto_server" ] && "$BERTH_MOTO_VENV/bin/python" -c 'import moto, boto3' 2>/dev/null; then
    return 0
  fi
  if [ "$BERTH_SCHEMATHESIS_PYTHON" = /usr/bin/python3 ]; then
    berth_apt_install python3 python3-venv
  fi
  berth_log "installing moto[server] $BERTH_MOTO_VERSION (PyPI) into $BERTH_MOTO_VENV"
  rm -rf "$BERTH_MOTO_VENV"
  mkdir -p "$(dirname "$BERTH_MOTO_VENV")"
  "$BERTH_SCHEMATHESIS_PYTHON" -m venv "$BERTH_MOTO_VENV"
  "$BERTH_MOTO_VENV/bin/pip" install -q --disable-pip-version-check \
    "moto[server]==$BERTH_MOTO_VERSION"
}
# --- end of moto ------------------------------------------------------------------------------

# --- binaryen (wasm-opt for the release bundle) -------------------------------------------
# npm's binaryen, pinned, under the cache directory; installed only when missing. Its
# wasm-opt goes first on the PATH of whatever sources this file; `xtask site --release` looks
# on PATH, then here, and fails without one.
BERTH_BINARYEN_VERSION="132.0.0"
BERTH_BINARYEN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/berth/binaryen-$BERTH_BINARYEN_VERSION"
berth_setup_binaryen() {
  if [ ! -x "$BERTH_BINARYEN_DIR/node_modules/.bin/wasm-opt" ]; then
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
      berth_apt_install nodejs npm
    fi
    berth_log "installing binaryen $BERTH_BINARYEN_VERSION (npm) into $BERTH_BINARYEN_DIR"
    mkdir -p "$BERTH_BINARYEN_DIR"
    npm install --silent --no-audit --no-fund --prefix "$BERTH_BINARYEN_DIR" \
      "binaryen@$BERTH_BINARYEN_VERSION"
  fi
  export PATH="$BERTH_BINARYEN_DIR/node_modules/.bin:$PATH"
}
# --- end of binaryen ---------------------------------------------------------------------

