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
#   BERTH_TEST_APTIBLE_BIN        the Aptible stand-in Berth talks to during the run
#                                 (default target/debug/berth-test-aptible)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
berth_setup_schemathesis

bin="${BERTH_BIN:-$PWD/target/debug/berth}"
aptible_bin="${BERTH_TEST_APTIBLE_BIN:-$PWD/target/debug/berth-test-aptible}"
[ -x "$bin" ] || { echo "schemathesis.sh: $bin is missing; cargo build -p server first" >&2; exit 1; }
max_time="${BERTH_SCHEMATHESIS_MAX_TIME:-180}"
# Berth refuses to start with a BERTH_* variable it does not know (these two, or the tests'
# BERTH_TEST_DATABASE_URL): it gets only the settings below.
for variable in $(compgen -e | grep '^BERTH_' || true); do unset "$variable"; done

work="$(mktemp -d)"
server_pid=""
aptible_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  # The router (Caddy) and any release outlive Berth by design: end them as an operator would.
  if [ -n "$server_pid" ]; then "$bin" stop-releases >/dev/null 2>&1 || true; fi
  # The stand-in ends when its stdin closes.
  exec 7>&- 2>/dev/null || true
  if [ -n "$aptible_pid" ]; then kill "$aptible_pid" 2>/dev/null || true; wait "$aptible_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Aptible is the stand-in (testaptible's berth-test-aptible, built by scripts/test.sh), so
# that fuzzed connections get Aptible's answers and nothing leaves the machine.
[ -x "$aptible_bin" ] || { echo "schemathesis.sh: $aptible_bin is missing; cargo build -p testaptible --bins first" >&2; exit 1; }
mkfifo "$work/aptible.in"
"$aptible_bin" <"$work/aptible.in" >"$work/aptible.json" 2>"$work/aptible.log" &
aptible_pid=$!
exec 7>"$work/aptible.in"
for _ in $(seq 1 100); do [ -s "$work/aptible.json" ] && break; sleep 0.1; done
aptible_url() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/aptible.json" "$1"; }

port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
export BERTH_ADDR="127.0.0.1:$port" BERTH_DATA_DIR="$work/data" BERTH_LOG="warn"
export BERTH_REGISTRY_TIMEOUT_SECS=3
BERTH_APTIBLE_API_URL="$(aptible_url api_url)"
BERTH_APTIBLE_AUTH_URL="$(aptible_url auth_url)"
export BERTH_APTIBLE_API_URL BERTH_APTIBLE_AUTH_URL
# A fuzzed ECR credential must not make Berth call AWS: ECR and STS are a loopback port
# nothing listens on (a clear "could not reach" answer).
closed_port="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export BERTH_ECR_ENDPOINT_URL="http://127.0.0.1:$closed_port" BERTH_STS_ENDPOINT_URL="http://127.0.0.1:$closed_port"
unset DATABASE_URL
mkdir -p "$BERTH_DATA_DIR"

"$bin" migrate >/dev/null
created="$(echo "fuzz-owner-password-$RANDOM$RANDOM" | "$bin" user create --email owner@fuzz.example --team acme)"
user_id="$(echo "$created" | grep -oE '\(user [0-9]+\)' | grep -oE '[0-9]+')"
token="$("$bin" token create --email owner@fuzz.example --name schemathesis)"

"$bin" >"$work/berth.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fs "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/berth.log" >&2; exit 1; }
  sleep 0.2
done

api() { # METHOD PATH BODY: a call that must succeed; prints the answer
  curl -fsS -X "$1" "$url$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data "$3"
}
api POST /api/v1/teams/acme/apps '{"handle": "web", "method": "image"}' >/dev/null
api POST /api/v1/teams/acme/credentials \
  '{"name": "hub", "registry": "registry.example.com", "username": "bot", "secret": "fuzz-secret"}' >/dev/null
# An operation (a configuration change of `web`), for /operations/{id}.
operation_id="$(api PATCH /api/v1/teams/acme/apps/web/config '{"env": {"GREETING": "hello"}}' |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["operation"]["id"])')"

cat >"$work/schemathesis.toml" <<EOF
# Real values for the path parameters (the rest is generated).
[parameters]
"path.team" = "acme"
"path.app" = "web"
"path.name" = "hub"
"path.user_id" = $user_id
"path.id" = $operation_id
EOF

out="$work/schemathesis.out"
st_status=0
# One worker: with two, Hypothesis parses source from two threads at once, and CPython 3.11
# and 3.12 (before 3.12.3) share the AST converter's recursion counter between threads, which
# fails now and then with "AST constructor recursion depth mismatch" (CPython gh-106905).
(cd "$work" && "$BERTH_SCHEMATHESIS" --config-file "$work/schemathesis.toml" run \
  "$url/api/v1/openapi.json" --url "$url" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --max-time "$max_time" --max-examples 25 --workers 1 --seed 11 \
  --generation-database none --no-color) 2>&1 | tee "$out" || st_status=$?

# The summary's "Test cases:" line follows on the next line: "N generated, N passed, …".
inputs="$(grep -A1 '^Test cases:' "$out" | grep -oE '[0-9]+ generated' | grep -oE '[0-9]+' | tail -1 || true)"
tested="$(grep -oE '^ *Tested: [0-9]+' "$out" | grep -oE '[0-9]+' | tail -1 || true)"
echo "schemathesis: ${inputs:-0} inputs tried on ${tested:-0} API operations"
# One test in the summary of scripts/test.sh: the whole run passes or fails.
if [ "$st_status" -eq 0 ] && [ "${inputs:-0}" -gt 0 ]; then
  echo "test result: ok. 1 passed; 0 failed; (schemathesis)"
else
  echo "test result: FAILED. 0 passed; 1 failed; (schemathesis)"
  echo "--- berth's log (last 40 lines) ---"; tail -40 "$work/berth.log"
  [ "$st_status" -ne 0 ] || st_status=1
fi
exit "$st_status"
