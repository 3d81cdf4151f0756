// Starts a test container registry and the Berth server under test: a free loopback port, a
// fresh temporary data directory (SQLite), and the already-built binaries and browser bundle.
// Returns the teardown, which stops both and removes the directory.
//
//   BERTH_BIN                server binary (default ../target/debug/berth)
//   BERTH_SITE_ROOT          browser bundle root holding pkg/ (default ../target/site)
//   BERTH_TEST_REGISTRY_BIN  test registry (default ../target/debug/berth-test-registry, from
//                            `cargo build -p testregistry --bins`)
//   BERTH_E2E_LOG            set to 1 to pass the server's output through as well
//
// The registry (htpasswd auth, plain HTTP on 127.0.0.1) holds one pushed image; the server
// reaches it through BERTH_INSECURE_REGISTRIES, and the tests find it in the environment:
// BERTH_E2E_REGISTRY_HOST, _IMAGE, _DIGEST, _USER and _PASSWORD (see tests/fixtures.ts).
// The output of both is kept in test-results/berth-server.log.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const here = __dirname;
const bin = path.resolve(here, process.env.BERTH_BIN || '../target/debug/berth');
const siteRoot = path.resolve(here, process.env.BERTH_SITE_ROOT || '../target/site');
const registryBin = path.resolve(here, process.env.BERTH_TEST_REGISTRY_BIN || '../target/debug/berth-test-registry');

/** What berth-test-registry prints once its image is pushed. */
type Registry = { host: string; image: string; digest: string; user: string; password: string };

/**
 * Starts berth-test-registry; resolves with its JSON line once the image is pushed. It runs
 * until its stdin closes or it gets SIGTERM, and then removes the registry and its directory.
 */
async function startRegistry(logFile: WriteStream): Promise<{ child: ChildProcess; registry: Registry }> {
  const child = spawn(registryBin, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  logFile.write(`--- ${registryBin}\n`);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
    logFile.write(`[test registry] ${chunk.toString()}`);
  });
  const line = new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const end = out.indexOf('\n');
      if (end >= 0) {
        child.stdout!.off('data', onData);
        resolve(out.slice(0, end));
      }
    };
    child.stdout!.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`berth-test-registry exited before it was ready (code ${code}, signal ${signal}):\n${stderr}`)),
    );
    setTimeout(() => reject(new Error(`berth-test-registry was not ready within 120 s:\n${stderr}`)), 120_000).unref();
  });
  try {
    const registry = JSON.parse(await line) as Registry;
    for (const key of ['host', 'image', 'digest', 'user', 'password'] as const) {
      if (typeof registry[key] !== 'string' || !registry[key]) throw new Error(`berth-test-registry printed no ${key}`);
    }
    child.once('exit', (code, signal) => logFile.write(`--- berth-test-registry exited (code ${code}, signal ${signal})\n`));
    return { child, registry };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** Starts one server; resolves once /healthz answers, rejects if the process exits first. */
async function start(
  dataDir: string,
  logFile: WriteStream,
  registry: Registry,
): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // The server refuses to start with an unknown BERTH_* variable, so hand it only its own.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('BERTH_') && k !== 'DATABASE_URL') env[k] = v;
  }
  Object.assign(env, {
    BERTH_ADDR: `127.0.0.1:${port}`,
    BERTH_PUBLIC_URL: url,
    BERTH_DATA_DIR: dataDir,
    BERTH_SITE_ROOT: siteRoot,
    BERTH_LOG: process.env.BERTH_LOG || 'info',
    // The test registry speaks plain HTTP.
    BERTH_INSECURE_REGISTRIES: registry.host,
    // Every spec founds its own team through /signup, all from 127.0.0.1: sign-up is open
    // (the default, closed, allows only the first account) and its per-address throttle
    // is raised above the suite's sign-ups. Both are tested by server/tests/accounts.rs.
    BERTH_SIGNUP: 'open',
    BERTH_SIGN_UPS_PER_HOUR: '1000',
    // The Dockerfile test deploys from a repository it makes in the temporary directory.
    BERTH_GIT_LOCAL_ROOTS: realpathSync(tmpdir()),
  });
  const passThrough = process.env.BERTH_E2E_LOG === '1';
  const child = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const collect = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
    logFile.write(chunk.toString().replace(/\x1b\[[0-9;]*m/g, ''));
    if (passThrough) process.stderr.write(chunk);
  };
  logFile.write(`--- ${bin} on ${url}, data in ${dataDir}\n`);
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`berth exited before it was healthy (code ${code}, signal ${signal}):\n${log}`)),
    );
  });
  const ready = (async () => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (await healthy(url)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`berth did not answer ${url}/healthz within 30 s:\n${log}`);
  })();
  try {
    await Promise.race([ready, exited]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  // A later exit shows as failing tests; the log says why.
  exited.catch(() => {});
  child.once('exit', (code, signal) => logFile.write(`--- berth exited (code ${code}, signal ${signal})\n`));
  return { child, url };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export default async function globalSetup() {
  for (const [what, p] of [
    ['BERTH_BIN', bin],
    ['BERTH_SITE_ROOT', path.join(siteRoot, 'pkg', 'berth_bg.wasm')],
    ['BERTH_TEST_REGISTRY_BIN', registryBin],
  ]) {
    if (!existsSync(p)) {
      throw new Error(
        `${p} is missing (${what}). Build first: cargo build -p server && ` +
          'cargo build -p testregistry --bins && cargo run -q -p xtask -- site',
      );
    }
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'berth-e2e-'));
  // Playwright empties test-results after global setup: log outside, copy in at teardown.
  const logPath = path.join(dataDir, 'server.log');
  const logFile = createWriteStream(logPath);
  let server;
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
  try {
    registry = await startRegistry(logFile);
    // A port picked free can be taken before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      try {
        server = await start(dataDir, logFile, registry.registry);
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    if (registry) await stop(registry.child);
    logFile.end();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const reg = registry.registry;
  process.env.BERTH_E2E_REGISTRY_HOST = reg.host;
  process.env.BERTH_E2E_REGISTRY_IMAGE = reg.image;
  process.env.BERTH_E2E_REGISTRY_DIGEST = reg.digest;
  process.env.BERTH_E2E_REGISTRY_USER = reg.user;
  process.env.BERTH_E2E_REGISTRY_PASSWORD = reg.password;
  const registryChild = registry.child;
  process.env.BERTH_E2E_BASE_URL = server.url;
  process.env.BERTH_E2E_PID = String(server.child.pid);
  const child = server.child;
  return async () => {
    await Promise.all([stop(child), stop(registryChild)]);
    await new Promise((resolve) => logFile.end(resolve));
    try {
      const results = path.join(here, 'test-results');
      mkdirSync(results, { recursive: true });
      copyFileSync(logPath, path.join(results, 'berth-server.log'));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  };
}
