#!/usr/bin/env bash
# Berth's benchmark suite: builds Berth as the README's run command does (release, the
# bundle through wasm-opt), starts it on a throwaway data dir on loopback and prints one
# Markdown table, the one in the README's "Performance" section.
#
#   scripts/bench.sh            # a few minutes once the release build is there
#   BENCH_SECONDS=30 scripts/bench.sh
#   BENCH_PROFILE=/tmp/berth.perf scripts/bench.sh   # and where the history page's time goes
#
# What it measures, each side by side in the same run (these machines are noisy: compare
# ratios, not absolute figures between runs):
# - the browser bundle every page loads (JS + WebAssembly + CSS), as sent: brotli;
# - the team history page (50 rows and the chart) against a static handler of the same
#   server sending the same bytes (wrk, 64 connections; the two take turns, five rounds,
#   BENCH_PAGE_ROUNDS sets how many);
# - the browser's script asked for again and again on one connection (each answer's time);
# - Berth's resident memory idle and right after that load;
# - 5 and 500 watchers of one operation's live log (database reads, CPU, memory);
# - deploys (a 1 MB and a 50 MB image, a Dockerfile) against raw buildah doing the same;
# - the history page's queries at 1,000 and 1,000,000 operations, SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
berth_setup run
berth_apt_install wrk curl
seconds="${BENCH_SECONDS:-15}"

berth_log "building the browser bundle and the server (release)"
cargo run -q --release -p xtask -- site --release
cargo build -q --release -p server

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ./target/release/berth stop-releases >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
apps_port="$(free_port)"
cp -r target/site "$work/site"
export BERTH_DATA_DIR="$work/data" BERTH_ADDR="127.0.0.1:$port" BERTH_SITE_ROOT="$work/site" \
  BERTH_APPS_ADDR="127.0.0.1:$apps_port" BERTH_APP_PORTS="24000-24099" BERTH_LOG=warn
base="http://127.0.0.1:$port"
berth=./target/release/berth

# --- the bundle ------------------------------------------------------------------------------
bundle_rows=""
total_br=0
total_raw=0
for key in js wasm css; do
  file="$work/site$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/site/assets.json" "$key")"
  raw=$(stat -c %s "$file")
  br=$(stat -c %s "$file.br")
  gz=$(stat -c %s "$file.gz")
  total_br=$((total_br + br))
  total_raw=$((total_raw + raw))
  bundle_rows+="| bundle: $key ($(basename "$file")) | $raw B; brotli $br B, gzip $gz B |"$'\n'
done

# --- Berth, an owner, an app with a history --------------------------------------------------
printf 'a long enough password\n' | $berth user create --email bench@example.com --team acme >/dev/null
token="$($berth token create --email bench@example.com --name bench)"
$berth serve 2>"$work/berth.log" &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
api() { curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
sleep 2
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
api -X POST -d '{"handle": "web", "method": "image"}' "$base/api/v1/teams/acme/apps" >/dev/null
last=""
for i in $(seq 1 60); do
  last=$(api -X PATCH -d "{\"env\": {\"BENCH\": \"$i\"}}" "$base/api/v1/teams/acme/apps/web/config" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["operation"]["id"])')
done
for _ in $(seq 1 300); do
  status=$(api "$base/api/v1/operations/$last" | python3 -c 'import json,sys; print(json.load(sys.stdin)["operation"]["status"])')
  [ "$status" = succeeded ] || [ "$status" = failed ] && break
  sleep 0.2
done

# Signed in as a browser is: the sign-in form's token and action, then the session cookie.
jar="$work/cookies"
signin="$(curl -fsS -c "$jar" -b "$jar" "$base/signin")"
csrf="$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$signin" | head -1 | sed 's/.*value="//; s/"$//')"
action="$(grep -o '<form[^>]*action="/api/sign_in[^"]*"' <<<"$signin" | head -1 | sed 's/.*action="//; s/"$//')"
curl -fsS -o /dev/null -c "$jar" -b "$jar" -H "Origin: $base" \
  --data-urlencode "csrf_token=$csrf" --data-urlencode email=bench@example.com \
  --data-urlencode "password=a long enough password" "$base$action"
cookie="berth_session=$(awk '$6 == "berth_session" {print $7}' "$jar")"
page="/teams/acme/history"
curl -fsS -H "Cookie: $cookie" "$base$page" >"$work/site/pkg/bench-history.html"
page_bytes=$(stat -c %s "$work/site/pkg/bench-history.html")
rows=$(grep -o '<tr' "$work/site/pkg/bench-history.html" | wc -l)

# --- throughput: the page, and the same bytes from a static handler ---------------------------
rate() { wrk -t2 -c64 -d"${seconds}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
# BENCH_PROFILE=FILE also records where Berth's time goes under the page's load (perf, call
# graphs): `perf report -i FILE` reads it.
if [ -n "${BENCH_PROFILE:-}" ]; then
  command -v perf >/dev/null 2>&1 || berth_apt_install linux-perf
  perf record -q -F 499 -g -p "$pid" -o "$BENCH_PROFILE" -- sleep "$seconds" >/dev/null 2>&1 &
  perf_pid=$!
fi
# The page and the static handler take turns, BENCH_PAGE_ROUNDS times (5): the machine's
# speed drifts within a run, and each round's ratio is of two loads a few seconds apart. The
# table shows the round with the median ratio, and every round's ratio.
rounds="${BENCH_PAGE_ROUNDS:-5}"
page_rates=()
static_rates=()
for round in $(seq 1 "$rounds"); do
  page_rates+=("$(rate -H "Cookie: $cookie" "$base$page")")
  if [ "$round" = 1 ]; then
    if [ -n "${BENCH_PROFILE:-}" ]; then wait "$perf_pid" || true; fi
    rss_loaded=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  fi
  static_rates+=("$(rate "$base/pkg/bench-history.html")")
done
read -r page_rate static_rate ratio rounds_ratios < <(python3 - "${page_rates[*]}" "${static_rates[*]}" <<'PY'
import sys
pages = [float(x) for x in sys.argv[1].split()]
statics = [float(x) for x in sys.argv[2].split()]
ratios = [p / s for p, s in zip(pages, statics)]
median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
every = "/".join(f"{100 * r:.0f}" for r in ratios)
print(f"{pages[median]:,.0f} {statics[median]:,.0f} {100 * ratios[median]:.0f} {every}")
PY
)
# The browser's script as a browser fetches it (brotli, 7 KiB): one connection asking again
# and again, the time each answer takes.
script="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['js'])" "$work/site/assets.json")"
script_latency=$(wrk -t1 -c1 -d3s -H 'Accept-Encoding: br' "$base$script" | awk '/Latency/ {print $2}')
# Berth stops before the history benchmark so that it has the machine to itself.
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=""
$berth stop-releases >/dev/null 2>&1 || true

# --- history queries at 1 k and 1 M operations, SQLite and PostgreSQL ---------------------------
# The store's own benchmark (store/benches/history.rs) seeds one team with N operations
# and times the queries the history page makes, each the median of 15; its last line per
# database is a summary. Seeding a million rows takes a few minutes: BENCH_HISTORY_SIZES=""
# skips this part. PostgreSQL: the machine's server when it answers, else a throwaway one.
if [ -z "${BERTH_TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export BERTH_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
history_rows=""
for size in ${BENCH_HISTORY_SIZES-1000 1000000}; do
  berth_log "history queries at $size operations (store/benches/history.rs)"
  BERTH_BENCH_OPERATIONS="$size" cargo bench -q -p store --bench history >"$work/history-$size.txt" 2>&1
  while read -r line; do
    history_rows+="$(python3 - "$line" <<'PY'
import sys
fields = dict(f.split("=", 1) for f in sys.argv[1].split()[1:])
n = int(fields["operations"])
size = f"{n // 1_000_000} M" if n >= 1_000_000 else f"{n // 1000} k"
print(f"| history queries, {fields['backend']}, {size} operations | first page {fields['team_first_page_ms']} ms, "
      f"chart (30 days) {fields['chart_ms']} ms; slowest filter: first page {fields['worst_first_page_ms']} ms, "
      f"deep page {fields['worst_deep_page_ms']} ms |")
PY
)"$'\n'
  done < <(grep '^summary ' "$work/history-$size.txt")
done

# --- live logs: 5 and 500 watchers of one running operation ----------------------------------
# server/tests/live.rs (bench_live_viewers, release build): the operation writes 250 lines
# over about 5 s while 5, then 500 event streams (63 people, 8 streams each) read them;
# database reads a second must not grow with the watchers. BENCH_LIVE=0 skips it.
live_rows=""
if [ "${BENCH_LIVE:-1}" != 0 ]; then
  berth_log "500 watchers of one live log (server/tests/live.rs, release)"
  cargo test -q --release -p server --test live -- --ignored --nocapture bench_live_viewers \
    >"$work/live.txt" 2>&1 || { cat "$work/live.txt" >&2; exit 1; }
  while read -r line; do
    live_rows+="$(python3 - "$line" <<'PY'
import sys
f = dict(x.split("=", 1) for x in sys.argv[1].split()[2:])
print(f"| live log, {f['viewers']} watchers of one operation ({f['lines_per_s']} lines/s) | "
      f"{f['feeds']} feed, {f['db_reads_per_s']} database reads/s, {f['cpu_ms_per_s']} ms CPU/s "
      f"(the watchers' reading included), memory +{int(f['rss_growth_kib']) / 1024:.1f} MB with the streams open |")
PY
)"$'\n'
  done < <(grep '^BENCH live ' "$work/live.txt")
fi

# --- deploys: Berth against raw buildah --------------------------------------------------------
# server/tests/deploys.rs (bench_deploy_overhead, release build): Direct Docker Image deploys
# of a 1 MB and a 50 MB image and a Dockerfile deploy, API call until the new release
# serves, against raw `buildah pull`/`build` + `from` + `run` of the same until it answers;
# cold (an image or commit neither side has seen), medians of BENCH_DEPLOY_RUNS runs (5).
# BENCH_DEPLOY=0 skips it; BENCH_DEPLOY_STEPS=1 prints each deploy's log with times.
deploy_rows=""
if [ "${BENCH_DEPLOY:-1}" != 0 ]; then
  berth_apt_install docker-registry skopeo umoci busybox-static git
  berth_log "deploys against raw buildah (server/tests/deploys.rs, release)"
  cargo test -q --release -p server --test deploys -- --ignored --nocapture bench_deploy_overhead \
    >"$work/deploys.txt" 2>&1 || { cat "$work/deploys.txt" >&2; exit 1; }
  if [ -n "${BENCH_DEPLOY_STEPS:-}" ]; then grep '^  ' "$work/deploys.txt" >&2 || true; fi
  while read -r line; do
    deploy_rows+="$(python3 - "$line" <<'PY'
import sys
f = dict(x.split("=", 1) for x in sys.argv[1].split()[2:])
what = {"image_1_MB": "Direct Docker Image deploy, 1 MB image",
        "image_50_MB": "Direct Docker Image deploy, 50 MB image",
        "dockerfile": "Dockerfile deploy (COPY and RUN on a pulled base)"}[f["case"]]
print(f"| {what}, API call → new release serving, vs raw buildah | {int(f['berth_ms']):,} ms vs "
      f"{int(f['raw_ms']):,} ms: **{f['ratio']}** (median of {f['runs']}) |")
PY
)"$'\n'
  done < <(grep '^BENCH deploy ' "$work/deploys.txt")
fi

cat <<EOF
| what | measured |
|---|---|
${bundle_rows}| bundle, every page, as sent (brotli) | $((total_br / 1024)) KiB ($((total_raw / 1024)) KiB uncompressed) |
| team history page ($rows table rows and the chart), 64 connections, ${seconds} s, the round with the median ratio of $rounds | $page_rate req/s, $((page_bytes / 1024)) KiB of HTML |
| the same bytes from a static handler of the same server, in the same round | $static_rate req/s: the page runs at $ratio % of it (rounds: $rounds_ratios %) |
| the browser's script from \`/pkg/\` (brotli), one connection, each answer | $script_latency on average |
| server RSS idle / after that load | $((rss_idle / 1024)) MB / $((rss_loaded / 1024)) MB |
EOF
printf '%s' "$live_rows"
printf '%s' "$deploy_rows"
printf '%s' "$history_rows"
