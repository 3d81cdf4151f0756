// A real git host over ssh for the browser tests, as server/tests/support/ssh_host.rs is for
// the Rust ones: Debian's sshd on a free port of 127.0.0.1, started here (there is no
// systemd), with one account whose login shell is git-shell and bare repositories in that
// account's home. It stands for the git remotes of apps on the Aptible stand-in, which Berth
// pushes Dockerfile deploys to. Which keys may push is the host's `authorized_keys`, read by
// sshd at every connection, to which a test adds the team's deploy key.
//
// Needs openssh-server, openssh-client and git's git-shell, and runs as root (it creates the
// account): a missing one fails global setup, never skips a test.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The account git-shell serves repositories as; the Rust tests use the same one. */
export const GIT_USER = 'berth-git';
const SSHD = '/usr/sbin/sshd';
const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 20_000;

/** What the tests need of the host (global-setup.ts exports it as BERTH_E2E_GIT_HOST). */
export type GitSshHostInfo = {
  /** `127.0.0.1:PORT`, as BERTH_EGRESS_ALLOW lists it. */
  authority: string;
  /** The file sshd reads the authorised keys from. */
  authorizedKeys: string;
};

export type GitSshHost = GitSshHostInfo & {
  /** An empty bare repository served as `name`: its ssh URL and its path. */
  serveEmptyRepository(name: string): { url: string; dir: string };
  /** What sshd logged (which key it was offered, and why it said no). */
  log(): string;
  /** Stops sshd and removes the repositories and sshd's files. */
  stop(): Promise<void>;
};

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(command, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
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

/** git-shell: on the PATH, or beside git's own programs. */
function gitShell(): string {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, 'git-shell');
    if (dir && existsSync(candidate)) return candidate;
  }
  const candidate = path.join(run('git', ['--exec-path']), 'git-shell');
  if (existsSync(candidate)) return candidate;
  throw new Error('git-shell is not installed (Debian: it comes with git)');
}

/** Hands `target` (and everything in it) to the git account. */
function chown(target: string) {
  run('chown', ['-R', `${GIT_USER}:`, target]);
}

/**
 * The git account's home, made if missing: its shell is git-shell, with no password but
 * unlocked (`useradd` leaves it locked, `!` in /etc/shadow, and sshd refuses a locked account
 * even for keys; `*` allows keys only).
 */
function account(): string {
  const shell = gitShell();
  const entry = () => {
    try {
      return run('getent', ['passwd', GIT_USER]);
    } catch {
      return undefined;
    }
  };
  if (!entry()) {
    try {
      run('useradd', ['--create-home', '--shell', shell, GIT_USER]);
    } catch (error) {
      // Exit 9: made meanwhile by another test run.
      if ((error as { status?: number }).status !== 9) throw new Error(`useradd ${GIT_USER} (the tests run as root): ${error}`);
    }
  }
  run('usermod', ['--password', '*', '--shell', shell, GIT_USER]);
  const home = entry()!.split(':')[5];
  mkdirSync(home, { recursive: true });
  chown(home);
  return home;
}

/** Ready is when sshd logs that it listens on `port` (a connection alone could reach another
 * sshd that took the port first). */
async function listening(child: ChildProcess, port: number, log: string): Promise<void> {
  const ready = `Server listening on 127.0.0.1 port ${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (text.includes(ready)) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sshd exited (code ${child.exitCode}, signal ${child.signalCode}):\n${text}`);
    }
    if (Date.now() > deadline) throw new Error(`sshd did not listen within ${START_TIMEOUT_MS} ms:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts sshd with nobody authorised yet. */
export async function startGitSshHost(): Promise<GitSshHost> {
  const home = account();
  // sshd's own files (configuration, host key, logs): root's only.
  const config = mkdtempSync(path.join(tmpdir(), 'berth-e2e-sshd-'));
  // The repositories and authorized_keys, owned by the account (sshd reads authorized_keys
  // as the account; git refuses a repository its user does not own).
  const site = mkdtempSync(path.join(home, 'site-'));
  chown(site);
  const authorizedKeys = path.join(site, 'authorized_keys');
  writeFileSync(authorizedKeys, '');
  chown(authorizedKeys);
  const removeAll = () => {
    rmSync(site, { recursive: true, force: true });
    rmSync(config, { recursive: true, force: true });
  };
  try {
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'berth-e2e-host', '-f', path.join(config, 'host_ed25519')]);
    // sshd's privilege separation directory (made by its init script, which nobody ran).
    mkdirSync('/run/sshd', { recursive: true });
    const failures: string[] = [];
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      // Free now, but something else may take it first: sshd then fails to bind, and we try
      // another.
      const port = await freePort();
      const configFile = path.join(config, 'sshd_config');
      writeFileSync(
        configFile,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${config}/host_ed25519`,
          `PidFile ${config}/sshd.pid`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          `AllowUsers ${GIT_USER}`,
          'PermitRootLogin no',
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'LogLevel VERBOSE',
          '',
        ].join('\n'),
      );
      const log = path.join(config, `sshd-${attempt}.log`);
      const child = spawn(SSHD, ['-D', '-f', configFile, '-E', log], { stdio: 'ignore' });
      child.on('error', () => {});
      try {
        await listening(child, port, log);
      } catch (error) {
        child.kill('SIGKILL');
        const why = (error as Error).message;
        failures.push(why);
        if (why.includes('Address already in use')) continue;
        break;
      }
      const authority = `127.0.0.1:${port}`;
      return {
        authority,
        authorizedKeys,
        serveEmptyRepository(name: string) {
          const dir = path.join(site, `${name}.git`);
          run('git', ['init', '--bare', '--quiet', '-b', 'main', dir], { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: site });
          chown(dir);
          return { url: `ssh://${GIT_USER}@${authority}${dir}`, dir };
        },
        log() {
          const logs = readdirSync(config).filter((f) => f.endsWith('.log')).sort();
          return logs.length ? readFileSync(path.join(config, logs.at(-1)!), 'utf8') : '';
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              child.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              child.kill('SIGTERM');
            });
          }
          removeAll();
        },
      };
    }
    throw new Error(`sshd did not start:\n${failures.join('\n---\n')}`);
  } catch (error) {
    removeAll();
    throw error;
  }
}

// What a test (in a Playwright worker, not the process that started sshd) does with the host.

/** Adds one public key (`ssh-ed25519 …`) to the host's authorized_keys; the next
 * connection sees it. Added, not replaced: each project's team has a key of its own. */
export function authorize(host: GitSshHostInfo, publicKey: string) {
  appendFileSync(host.authorizedKeys, `${publicKey.trim()}\n`);
  chmodSync(host.authorizedKeys, 0o644);
}

/** The commit branch `branch` of the bare repository `dir` points at, or undefined (read as
 * root from a repository the git account owns: git is told that is fine). */
export function branchCommit(dir: string, branch: string): string | undefined {
  try {
    return run(
      'git',
      ['-c', 'safe.directory=*', '--git-dir', dir, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`],
      { ...process.env, GIT_CONFIG_NOSYSTEM: '1' },
    );
  } catch {
    return undefined;
  }
}

/** The branches of the bare repository `dir`. */
export function branches(dir: string): string[] {
  const out = run('git', ['-c', 'safe.directory=*', '--git-dir', dir, 'for-each-ref', '--format=%(refname:short)', 'refs/heads'], {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
  });
  return out ? out.split('\n') : [];
}
