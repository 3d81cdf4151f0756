// Starts a test container registry, the Aptible stand-in and the Berth server under test: a
// free loopback port, a fresh temporary data directory (SQLite), and the already-built
// binaries and browser bundle, and a git host over ssh (git-ssh-host.ts). Returns the
// teardown, which stops them all and removes the directory.
//
//   BERTH_BIN                server binary (default ../target/debug/berth)
//   BERTH_SITE_ROOT          browser bundle root holding pkg/ (default ../target/site)
//   BERTH_TEST_REGISTRY_BIN  test registry (default ../target/debug/berth-test-registry, from
//                            `cargo build -p testregistry --bins`)
//   BERTH_TEST_APTIBLE_BIN   Aptible stand-in (default ../target/debug/berth-test-aptible, from
//                            `cargo build -p testaptible --bins`)
//   BERTH_TEST_ECR_BIN       ECR stand-in: moto and a registry taking its tokens (default
//                            ../target/debug/berth-test-ecr, from `cargo build -p testregistry --bins`)
//   BERTH_E2E_LOG            set to 1 to pass the server's output through as well
//
// The registry (htpasswd auth, plain HTTP on 127.0.0.1) holds one pushed image; the server
// reaches it through BERTH_INSECURE_REGISTRIES, and the tests find it in the environment:
// BERTH_E2E_REGISTRY_HOST, _IMAGE, _DIGEST, _USER and _PASSWORD (see tests/fixtures.ts).
// The Aptible stand-in (its auth server and API on loopback ports) has one user, who must
// give a one-time code, and the apps staging/web and staging/worker; the server talks to it
// through BERTH_APTIBLE_API_URL and BERTH_APTIBLE_AUTH_URL, and the tests find it in
// BERTH_E2E_APTIBLE_API_URL, _EMAIL, _PASSWORD, _OTP, _TOKEN, _ENVIRONMENT and _APP.
// The stand-in also has one app per Playwright project, staging/site-PROJECT, whose git remote
// is a bare repository on a real sshd + git-shell host on loopback (git-ssh-host.ts); Berth
// may reach that port (BERTH_EGRESS_ALLOW), and the tests find the host and the apps in
// BERTH_E2E_GIT_HOST and BERTH_E2E_APTIBLE_GIT_APPS (JSON; see tests/fixtures.ts).
// The ECR stand-in (moto, which checks SigV4, as ECR and STS, and a registry taking the tokens
// moto mints) is reached through BERTH_ECR_ENDPOINT_URL, BERTH_STS_ENDPOINT_URL and
// BERTH_ECR_REGISTRY_HOSTS; the tests find its AWS key and image in BERTH_E2E_ECR_*.
// The output of the server and the helpers is kept in test-results/berth-server.log.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FullConfig } from '@playwright/test';
import { startGitSshHost, type GitSshHost, type GitSshHostInfo } from './git-ssh-host';

const here = __dirname;
const bin = path.resolve(here, process.env.BERTH_BIN || '../target/debug/berth');
const siteRoot = path.resolve(here, process.env.BERTH_SITE_ROOT || '../target/site');
const registryBin = path.resolve(here, process.env.BERTH_TEST_REGISTRY_BIN || '../target/debug/berth-test-registry');
const aptibleBin = path.resolve(here, process.env.BERTH_TEST_APTIBLE_BIN || '../target/debug/berth-test-aptible');
const ecrBin = path.resolve(here, process.env.BERTH_TEST_ECR_BIN || '../target/debug/berth-test-ecr');

/** What berth-test-ecr prints once moto and its registry are ready. */
type Ecr = {
  endpoint: string;
  registry_host: string;
  image: string;
  digest: string;
  access_key_id: string;
  secret_access_key: string;
  token_password: string;
};

/** What berth-test-registry prints once its image is pushed. */
type Registry = { host: string; image: string; digest: string; user: string; password: string };

/** What berth-test-aptible prints once it listens. */
type Aptible = {
  api_url: string;
  auth_url: string;
  email: string;
  password: string;
  otp: string;
  token: string;
  apps: { id: number; environment: string; handle: string; git_repo: string | null }[];
};

/**
 * Starts one of the test helpers (berth-test-registry, berth-test-aptible); resolves with the
 * JSON line it prints once it is ready. Each runs until its stdin closes or it gets SIGTERM,
 * and then removes what it made.
 */
async function startHelper<T extends Record<string, unknown>>(
  bin: string,
  args: string[],
  label: string,
  required: (keyof T & string)[],
  logFile: WriteStream,
): Promise<{ child: ChildProcess; printed: T }> {
  const name = path.basename(bin);
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  logFile.write(`--- ${bin}\n`);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
    logFile.write(`[${label}] ${chunk.toString()}`);
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
      reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal}):\n${stderr}`)),
    );
    setTimeout(() => reject(new Error(`${name} was not ready within 120 s:\n${stderr}`)), 120_000).unref();
  });
  try {
    const printed = JSON.parse(await line) as T;
    for (const key of required) {
      if (typeof printed[key] !== 'string' || !printed[key]) throw new Error(`${name} printed no ${key}`);
    }
    child.once('exit', (code, signal) => logFile.write(`--- ${name} exited (code ${code}, signal ${signal})\n`));
    return { child, printed };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

function startRegistry(logFile: WriteStream) {
  return startHelper<Registry>(registryBin, [], 'test registry', ['host', 'image', 'digest', 'user', 'password'], logFile);
}

function startEcr(logFile: WriteStream) {
  return startHelper<Ecr>(
    ecrBin,
    [],
    'ecr stand-in',
    ['endpoint', 'registry_host', 'image', 'digest', 'access_key_id', 'secret_access_key', 'token_password'],
    logFile,
  );
}

/** An app on the stand-in whose git remote is a bare repository on the git host. */
export type AptibleGitApp = { environment: string; app: string; repository: string };

/**
 * Starts the Aptible stand-in with one user, who must give a one-time code (the Platforms
 * page's two-step sign-in is what the browser test exercises), the apps staging/web and
 * staging/worker, and `gitApps`, each with its git remote.
 */
async function startAptible(logFile: WriteStream, gitApps: { environment: string; app: string; url: string }[]) {
  const otp = String(100_000 + Math.floor(Math.random() * 900_000));
  const apps = ['staging/web', 'staging/worker', ...gitApps.map((a) => `${a.environment}/${a.app}=${a.url}`)];
  const started = await startHelper<Aptible>(
    aptibleBin,
    ['--otp', otp, ...apps.flatMap((app) => ['--app', app])],
    'aptible stand-in',
    ['api_url', 'auth_url', 'email', 'password', 'otp', 'token'],
    logFile,
  );
  if (!Array.isArray(started.printed.apps) || started.printed.apps.length === 0) {
    started.child.kill('SIGKILL');
    throw new Error('berth-test-aptible printed no apps');
  }
  return started;
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
  aptible: Aptible,
  gitHost: GitSshHostInfo,
  ecr: Ecr,
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
    // The test registries speak plain HTTP.
    BERTH_INSECURE_REGISTRIES: `${registry.host},${ecr.registry_host}`,
    // ECR and STS are moto; its registry stands in for an ECR registry host.
    BERTH_ECR_ENDPOINT_URL: ecr.endpoint,
    BERTH_STS_ENDPOINT_URL: ecr.endpoint,
    BERTH_ECR_REGISTRY_HOSTS: ecr.registry_host,
    // Apps on Aptible are forwarded to the stand-in.
    BERTH_APTIBLE_API_URL: aptible.api_url,
    BERTH_APTIBLE_AUTH_URL: aptible.auth_url,
    // Every spec founds its own team through /signup, all from 127.0.0.1: sign-up is open
    // (the default, closed, allows only the first account) and its per-address throttle
    // is raised above the suite's sign-ups. Both are tested by server/tests/accounts.rs.
    BERTH_SIGNUP: 'open',
    BERTH_SIGN_UPS_PER_HOUR: '1000',
    // The Dockerfile test deploys from a repository it makes in the temporary directory.
    BERTH_GIT_LOCAL_ROOTS: realpathSync(tmpdir()),
  });
  // Berth refuses loopback addresses for egress unless allowed, as an operator would allow
  // an internal git host: the git remotes of the stand-in's apps are on the test sshd.
  env.BERTH_EGRESS_ALLOW = [env.BERTH_EGRESS_ALLOW, gitHost.authority].filter(Boolean).join(',');
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

export default async function globalSetup(config: FullConfig) {
  for (const [what, p] of [
    ['BERTH_BIN', bin],
    ['BERTH_SITE_ROOT', path.join(siteRoot, 'assets.json')],
    ['BERTH_TEST_REGISTRY_BIN', registryBin],
    ['BERTH_TEST_APTIBLE_BIN', aptibleBin],
    ['BERTH_TEST_ECR_BIN', ecrBin],
  ]) {
    if (!existsSync(p)) {
      throw new Error(
        `${p} is missing (${what}). Build first: cargo build -p server && ` +
          'cargo build -p testregistry --bins && cargo build -p testaptible --bins && ' +
          'cargo run -q -p xtask -- site',
      );
    }
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'berth-e2e-'));
  // Playwright empties test-results after global setup: log outside, copy in at teardown.
  const logPath = path.join(dataDir, 'server.log');
  const logFile = createWriteStream(logPath);
  // The registry and the git host start together, the stand-in once the git host has its
  // port (its apps' git remotes name it); if one fails, whichever did start is stopped.
  const startedRegistry = startRegistry(logFile);
  const startedEcr = startEcr(logFile);
  const startedGitHost = startGitSshHost();
  // One Aptible app, with a repository of its own, per project: the projects run the same
  // test one after the other and must not see each other's pushes.
  const startedAptible = startedGitHost.then((host) =>
    startAptible(
      logFile,
      config.projects.map((project) => ({
        environment: 'staging',
        app: `site-${project.name}`,
        url: host.serveEmptyRepository(`aptible-site-${project.name}`).url,
      })),
    ),
  );
  let server;
  let registry: Awaited<typeof startedRegistry>;
  let aptible: Awaited<typeof startedAptible>;
  let ecr: Awaited<typeof startedEcr>;
  let gitHost: GitSshHost;
  try {
    [registry, gitHost, aptible, ecr] = await Promise.all([startedRegistry, startedGitHost, startedAptible, startedEcr]);
    // A port picked free can be taken before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      try {
        server = await start(dataDir, logFile, registry.printed, aptible.printed, gitHost, ecr.printed);
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    const helpers = await Promise.allSettled([startedRegistry, startedAptible, startedEcr]);
    await Promise.all(helpers.flatMap((h) => (h.status === 'fulfilled' ? [stop(h.value.child)] : [])));
    const host = await Promise.allSettled([startedGitHost]);
    if (host[0].status === 'fulfilled') await host[0].value.stop();
    logFile.end();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const reg = registry.printed;
  process.env.BERTH_E2E_REGISTRY_HOST = reg.host;
  process.env.BERTH_E2E_REGISTRY_IMAGE = reg.image;
  process.env.BERTH_E2E_REGISTRY_DIGEST = reg.digest;
  process.env.BERTH_E2E_REGISTRY_USER = reg.user;
  process.env.BERTH_E2E_REGISTRY_PASSWORD = reg.password;
  const registryChild = registry.child;
  const apt = aptible.printed;
  process.env.BERTH_E2E_APTIBLE_API_URL = apt.api_url;
  process.env.BERTH_E2E_APTIBLE_EMAIL = apt.email;
  process.env.BERTH_E2E_APTIBLE_PASSWORD = apt.password;
  process.env.BERTH_E2E_APTIBLE_OTP = apt.otp;
  process.env.BERTH_E2E_APTIBLE_TOKEN = apt.token;
  process.env.BERTH_E2E_APTIBLE_ENVIRONMENT = apt.apps[0].environment;
  process.env.BERTH_E2E_APTIBLE_APP = apt.apps[0].handle;
  const aptibleChild = aptible.child;
  const aws = ecr.printed;
  process.env.BERTH_E2E_ECR_REGISTRY_HOST = aws.registry_host;
  process.env.BERTH_E2E_ECR_IMAGE = aws.image;
  process.env.BERTH_E2E_ECR_DIGEST = aws.digest;
  process.env.BERTH_E2E_ECR_ACCESS_KEY_ID = aws.access_key_id;
  process.env.BERTH_E2E_ECR_SECRET_ACCESS_KEY = aws.secret_access_key;
  process.env.BERTH_E2E_ECR_TOKEN_PASSWORD = aws.token_password;
  const ecrChild = ecr.child;
  process.env.BERTH_E2E_GIT_HOST = JSON.stringify({ authority: gitHost.authority, authorizedKeys: gitHost.authorizedKeys });
  const gitApps: Record<string, AptibleGitApp> = {};
  for (const project of config.projects) {
    const app = apt.apps.find((a) => a.handle === `site-${project.name}`);
    if (!app?.git_repo) throw new Error(`berth-test-aptible has no app site-${project.name} with a git remote`);
    // The remote's path is the bare repository's, on this machine.
    gitApps[project.name] = { environment: app.environment, app: app.handle, repository: new URL(app.git_repo).pathname };
  }
  process.env.BERTH_E2E_APTIBLE_GIT_APPS = JSON.stringify(gitApps);
  const host = gitHost;
  process.env.BERTH_E2E_BASE_URL = server.url;
  process.env.BERTH_E2E_PID = String(server.child.pid);
  const child = server.child;
  return async () => {
    await Promise.all([stop(child), stop(registryChild), stop(aptibleChild), stop(ecrChild)]);
    // Releases outlive Berth (and the route to them): end the suite's as an operator would.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('BERTH_') && k !== 'DATABASE_URL') env[k] = v;
    }
    env.BERTH_DATA_DIR = dataDir;
    const stopped = spawnSync(bin, ['stop-releases'], { env, encoding: 'utf8', timeout: 120_000 });
    logFile.write(`--- berth stop-releases (status ${stopped.status}): ${stopped.stdout}${stopped.stderr}\n`);
    // sshd's log (which keys it was offered, and why it said no) goes with the others.
    logFile.write(`--- sshd on ${host.authority}\n${host.log()}`);
    await host.stop();
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
