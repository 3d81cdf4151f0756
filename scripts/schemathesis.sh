#!/usr/bin/env bash
# Fuzzes Berth's JSON API with schemathesis (PyPI, installed by scripts/setup.sh) against its
# own OpenAPI document, as an owner: a bounded run, part of scripts/test.sh.
#
# Starts target/debug/berth on a free loopback port with a fresh data dir and SQLite, makes an
# owner, team `acme`, an API token (the CLI), an image app `web` and a team credential `hub`
# (the API) so that paths have real values, then runs schemathesis with the checks
# not_a_server_error, status_code_conformance and response_schema_conformance. Prints how many
# inputs it tried and a cargo-style "test result:" line that scripts/test.sh counts.
#
#   BERTH_SCHEMATHESIS_MAX_TIME   the run's time budget in seconds (default 180)
#   BERTH_BIN                     the berth binary (default target/debug/berth)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
berth_setup_schemathesis

bin="${BERTH_BIN:-$PWD/target/debug/berth}"
[ -x "$bin" ] || { echo "schemathesis.sh: $bin is missing; cargo build -p server first" >&2; exit 1; }
max_time="${BERTH_SCHEMATHESIS_MAX_TIME:-180}"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
export BERTH_ADDR="127.0.0.1:$port" BERTH_DATA_DIR="$work/data" BERTH_LOG="warn"
export BERTH_REGISTRY_TIMEOUT_SECS=3
unset DATABASE_URL
mkdir -p "$BERTH_DATA_DIR"

"$bin" migrate >/dev/null
echo "fuzz-owner-password-$RANDOM$RANDOM" | "$bin" user create --email owner@fuzz.example --team acme >/dev/null
token="$("$bin" token create --email owner@fuzz.example --name schemathesis)"

"$bin" >"$work/berth.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fs "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/berth.log" >&2; exit 1; }
  sleep 0.2
done

api() { # METHOD PATH BODY: a call that must succeed
  curl -fsS -X "$1" "$url$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data "$3" >/dev/null
}
api POST /api/v1/teams/acme/apps '{"handle": "web", "method": "image"}'
api POST /api/v1/teams/acme/credentials \
  '{"name": "hub", "registry": "registry.example.com", "username": "bot", "secret": "fuzz-secret"}'

cat >"$work/schemathesis.toml" <<'EOF'
# Real values for the path parameters (the rest is generated).
[parameters]
"path.team" = "acme"
"path.app" = "web"
"path.name" = "hub"
EOF

out="$work/schemathesis.out"
st_status=0
(cd "$work" && "$BERTH_SCHEMATHESIS" --config-file "$work/schemathesis.toml" run \
  "$url/api/v1/openapi.json" --url "$url" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --max-time "$max_time" --max-examples 25 --workers 2 --seed 11 \
  --generation-database none --no-color) 2>&1 | tee "$out" || st_status=$?

# The summary: "Test cases: N generated, …" and the operations that passed and failed.
inputs="$(grep -oE 'Test cases:[^0-9]*[0-9]+' "$out" | grep -oE '[0-9]+$' | tail -1 || true)"
ops_passed="$(grep -oE 'API Operations:.*' "$out" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' | tail -1 || true)"
ops_failed="$(grep -oE 'API Operations:.*' "$out" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' | tail -1 || true)"
ops_passed="${ops_passed:-0}"
ops_failed="${ops_failed:-0}"
if [ "$st_status" -ne 0 ] && [ "$ops_failed" -eq 0 ]; then ops_failed=1; fi
echo "schemathesis: ${inputs:-?} inputs tried against $url/api/v1/openapi.json"
if [ "$st_status" -eq 0 ]; then
  echo "test result: ok. $ops_passed passed; $ops_failed failed; (schemathesis, API operations)"
else
  echo "test result: FAILED. $ops_passed passed; $ops_failed failed; (schemathesis, API operations)"
  echo "--- berth's log (last 40 lines) ---"; tail -40 "$work/berth.log"
fi
exit "$st_status"
