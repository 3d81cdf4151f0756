#!/usr/bin/env bash
# Sets up what is missing and runs every test: unit and property tests, the store suite on
# SQLite and PostgreSQL, the HTTP tests (authorisation matrix included) and the browser
# tests (Chromium, with and without JavaScript), and schemathesis against the JSON API's OpenAPI
# document. Ends with one summary line.
#
# PostgreSQL: BERTH_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)
# when set; otherwise the tests start a throwaway cluster with Debian's initdb/pg_ctl.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
berth_setup test
# The ECR tests (testregistry::moto) and berth-test-ecr run moto from this virtualenv.
export BERTH_MOTO_BIN="$BERTH_MOTO_VENV/bin"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

berth_log "building the server and the browser bundle (once for the whole run)"
cargo build -q -p server
# The browser tests start a real registry, the ECR stand-in (moto) and the Aptible stand-in
# with these small binaries.
cargo build -q -p testregistry --bins
cargo build -q -p testaptible --bins
cargo run -q -p xtask -- site

berth_log "Rust tests (unit, property, store on SQLite and PostgreSQL, HTTP)"
status=0
# The frontend is left out: built for the host together with the server, Cargo would
# unify the app crate's `hydrate` and `ssr` features. It is built for wasm above.
cargo test --no-fail-fast --workspace --exclude frontend --exclude server 2>&1 | tee -a "$log" || status=$?
# The server's HTTP tests run one at a time: each test has its own Tokio runtime, and Leptos
# page rendering across several runtimes in one process was seen to lose a wake-up (a test
# hangs). The server itself runs one runtime, where this cannot happen.
cargo test --no-fail-fast -p server -- --test-threads=1 2>&1 | tee -a "$log" || status=$?

# --- schemathesis: the JSON API fuzzed against its own OpenAPI document ----------------------
# A bounded run (BERTH_SCHEMATHESIS_MAX_TIME, default 180 s) as a team owner; it prints the
# number of inputs it tried and a "test result:" line counted below.
berth_log "schemathesis (the JSON API against /api/v1/openapi.json)"
bash scripts/schemathesis.sh 2>&1 | tee -a "$log" || status=$?
# --- end of schemathesis ----------------------------------------------------------------------

berth_log "browser tests (Playwright + Chromium)"
BERTH_BIN="$PWD/target/debug/berth" BERTH_SITE_ROOT="$PWD/target/site" \
  BERTH_TEST_REGISTRY_BIN="$PWD/target/debug/berth-test-registry" \
  BERTH_TEST_APTIBLE_BIN="$PWD/target/debug/berth-test-aptible" \
  BERTH_TEST_ECR_BIN="$PWD/target/debug/berth-test-ecr" \
  bash end2end/run.sh 2>&1 | tee -a "$log" || status=$?

# One line for the whole run: cargo's "test result:" lines plus Playwright's summary.
# (`|| true`: grep finding nothing is not an error here.)
count() { grep -oE "$1" "$log" || true; }
passed=$(count 'test result: [a-zA-Z]+\. [0-9]+ passed' | awk '{s+=$4} END {print s+0}')
failed=$(count '[0-9]+ failed;' | awk '{s+=$1} END {print s+0}')
e2e_passed=$(count '^ *[0-9]+ passed \(' | tail -1 | awk '{print $1+0}')
e2e_failed=$(count '^ *[0-9]+ failed$' | tail -1 | awk '{print $1+0}')
passed=$((passed + ${e2e_passed:-0}))
failed=$((failed + ${e2e_failed:-0}))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "berth tests: $passed passed, $failed failed"
exit "$status"
