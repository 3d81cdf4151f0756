#!/usr/bin/env bash
# Sets up what is missing, builds Berth (release) and runs it on its embedded default:
# SQLite in ./data, http://127.0.0.1:3000. Settings: see README ("Configuration").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
berth_setup run
berth_log "building the browser bundle"
cargo run -q --release -p xtask -- site --release
berth_log "building the server"
cargo build -q --release -p server
export BERTH_SITE_ROOT="${BERTH_SITE_ROOT:-$PWD/target/site}"
berth_log "Berth is starting on http://${BERTH_ADDR:-127.0.0.1:3000}"
exec ./target/release/berth serve
