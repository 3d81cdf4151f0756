#!/usr/bin/env bash
# Runs Berth's browser end-to-end tests (Playwright with Debian's chromium) against the
# already-built server, test registry, Aptible stand-in and browser bundle:
#   cargo build -p server && cargo build -p testregistry --bins && cargo build -p testaptible --bins &&
#     cargo run -q -p xtask -- site && end2end/run.sh
# Extra arguments go to `playwright test` (e.g. --project=ssr, -g invit).
# BERTH_BIN / BERTH_SITE_ROOT / BERTH_TEST_REGISTRY_BIN / BERTH_TEST_APTIBLE_BIN /
# BERTH_TEST_ECR_BIN override ../target/debug/berth, ../target/site,
# ../target/debug/berth-test-registry, ../target/debug/berth-test-aptible and
# ../target/debug/berth-test-ecr. The server and the bundle must come from the same checkout:
# a server function's address includes a hash of the crate's directory, so a bundle built
# elsewhere calls addresses this server does not have.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Install exactly what package-lock.json pins when node_modules is missing or older than it.
stamp=node_modules/.package-lock.json
if [[ ! -d node_modules || ! -f $stamp || package-lock.json -nt $stamp ]]; then
  npm ci --no-audit --no-fund
fi

# Browsers are never downloaded: the config points at /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec npx --no-install playwright test --reporter=list "$@"
