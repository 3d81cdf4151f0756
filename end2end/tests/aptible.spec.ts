// Apps on Aptible, against the Aptible stand-in (berth-test-aptible) and the real registry
// that global-setup.ts started: an owner connects the team on the Platforms page with an
// Aptible e-mail and password, is asked for the one-time code and connects with it; creates
// an image app that runs on Aptible (a wrong Aptible app handle is refused at its field
// first); deploys a private image with credentials given, which Berth verifies against the
// registry and forwards to Aptible, and sees Aptible's log in the operation's page and the
// registry password nowhere; then changes the configuration and restarts, each forwarded and
// followed to success. A second test deploys a Dockerfile app on Aptible: the owner makes the
// team's deploy key and adds it to the git host standing for Aptible's (a real sshd +
// git-shell), deploys `main` with the private base image's registry login, and sees Berth push
// the commit to the app's git remote on a branch of its own and Aptible build that branch.
// Runs with JavaScript on ("hydrate") and off ("ssr").
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { authorize, branchCommit, branches } from '../git-ssh-host';
import {
  appTab,
  everything,
  expect,
  git,
  goVia,
  nav,
  open,
  PASSWORD,
  settled,
  signUp,
  test,
  testAptible,
  testAptibleGitApp,
  testGitHost,
  testRegistry,
  uniqueNames,
} from './fixtures';
import type { Page } from '@playwright/test';

const APP = 'web';
/** The stand-in answers "queued", "running" twice, then the outcome; Berth polls every 2 s. */
const OPERATION_TIMEOUT = 60_000;

function aptibleSection(page: Page) {
  return page.getByRole('region', { name: /^Aptible/ });
}

/** The app's recent operations, one row each (the header row left out). */
function operationRows(page: Page) {
  return page
    .getByRole('region', { name: 'Recent operations' })
    .getByRole('table', { name: 'Recent operations' })
    .getByRole('row')
    .filter({ has: page.getByRole('link', { name: /^#\d+$/ }) });
}

/** Fills the new-app form for an image app on Aptible (all of it: without JavaScript a
 * refused form comes back empty). */
async function fillNewAptibleApp(page: Page, environment: string, app: string) {
  await page.getByLabel('Handle', { exact: true }).fill(APP);
  await page.getByRole('radio', { name: 'Direct Docker Image' }).check();
  await page.getByRole('radio', { name: 'Aptible', exact: true }).check();
  await page.getByLabel('Aptible environment (Aptible apps only)').fill(environment);
  await page.getByLabel('Aptible app (Aptible apps only)').fill(app);
}

/**
 * On an operation's page: waits until the operation has succeeded on Aptible and Berth has
 * copied Aptible's log into its own; answers the operation's id. With JavaScript the page
 * follows it live; without, it refreshes itself until the operation ends.
 */
async function followToSuccess(page: Page, team: string, title: 'Deploy' | 'Configure' | 'Restart', kind: string): Promise<number> {
  await expect(page).toHaveURL(new RegExp(`/teams/${team}/operations/\\d+$`), { timeout: 30_000 });
  const id = Number(/\/operations\/(\d+)$/.exec(page.url())![1]);
  const heading = page.getByRole('heading', { level: 1 });
  await expect(heading).toContainText(`${title} #${id}`);
  await expect(heading).toHaveAccessibleName(`${title} #${id} succeeded`, { timeout: OPERATION_TIMEOUT });
  await settled(page);
  const log = page.getByRole('log');
  // Berth's own lines: what it forwarded, and how Aptible's operation went.
  await expect(log).toContainText(new RegExp(`Forwarding a ${kind} operation to Aptible app `));
  await expect(log).toContainText(/Aptible operation \d+: succeeded/);
  // Aptible's log, copied in when the operation ended.
  await expect(log).toContainText(/--- Aptible's log of operation \d+ ---/);
  await expect(log).toContainText(new RegExp(`Starting App ${kind} operation with ID: \\d+`));
  await expect(log).toContainText('Operation succeeded.');
  await expect(log).toContainText("--- end of Aptible's log ---");
  await expect(page.getByRole('heading', { level: 2, name: 'Log' })).not.toContainText('live');
  await expect(page.getByRole('alert')).toHaveCount(0);
  return id;
}

/** Back to the app's page through the operation page's breadcrumb. */
async function backToApp(page: Page, team: string) {
  await page.getByRole('link', { name: APP, exact: true }).first().click();
  await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/${APP}$`));
  await settled(page);
}

test('an owner connects the team to Aptible with a one-time code, and deploys, configures and restarts an image app there', async ({
  page,
}, testInfo) => {
  test.setTimeout(240_000);
  const aptible = testAptible();
  const registry = testRegistry();
  const names = uniqueNames(testInfo, 'aptible');
  const team = names.teamHandle;
  const appUrl = new RegExp(`/teams/${team}/apps/${APP}$`);
  const platformsUrl = new RegExp(`/teams/${team}/platforms$`);
  // A secret configuration value: Aptible's log repeats it, Berth must not.
  const secretValue = `s3cret-${Date.now().toString(36)}`;
  const noSecrets = async () => {
    const content = await everything(page);
    expect(content).not.toContain(registry.password);
    expect(content).not.toContain(aptible.password);
    expect(content).not.toContain(aptible.token);
    expect(content).not.toContain(secretValue);
    expect(page.url()).not.toContain(registry.password);
  };

  await test.step('the owner signs up and finds the team not connected to Aptible', async () => {
    await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: team });
    await goVia(page, 'Platforms', platformsUrl);
    await expect(page.getByRole('heading', { level: 1, name: 'Platforms' })).toBeVisible();
    await expect(nav(page).getByRole('link', { name: 'Platforms', exact: true })).toHaveAttribute('aria-current', 'page');
    const section = aptibleSection(page);
    await expect(section.getByRole('heading', { level: 2 })).toHaveText('Aptible Not connected');
    await expect(section).toContainText(aptible.apiUrl);
  });

  await test.step('signing in with e-mail and password, the owner is asked for the one-time code', async () => {
    await page.getByLabel('Aptible e-mail').fill(aptible.email);
    await page.getByLabel('Aptible password').fill(aptible.password);
    await page.getByRole('button', { name: 'Connect to Aptible' }).click();
    const otp = page.getByLabel(/^One-time code/);
    await expect(otp).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
    await expect(otp).toHaveAccessibleDescription(/two-factor authentication: enter the one-time code/);
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/platforms(\\?.*)?$`));
    await settled(page);
    await expect(aptibleSection(page).getByRole('heading', { level: 2 })).toHaveText('Aptible Not connected');
    // Only the error travels back (without JavaScript in the address): never the password.
    const address = new URL(page.url());
    for (const text of [page.url(), ...[...address.searchParams.values()].map((v) => Buffer.from(v, 'base64').toString())]) {
      expect(text).not.toContain(aptible.password);
    }
    expect(await page.content()).not.toContain(aptible.password);
  });

  await test.step('with the one-time code the team is connected, and the token expiry is shown', async () => {
    // The password is never sent back to the browser, so it is given again with the code,
    // as Aptible's own CLI asks for both.
    await page.getByLabel('Aptible e-mail').fill(aptible.email);
    await page.getByLabel('Aptible password').fill(aptible.password);
    await page.getByLabel(/^One-time code/).fill(aptible.otp);
    await page.getByRole('button', { name: 'Connect to Aptible' }).click();
    const section = aptibleSection(page);
    await expect(section.getByRole('heading', { level: 2 })).toHaveText('Aptible Connected', { timeout: 30_000 });
    await expect(page).toHaveURL(platformsUrl);
    await settled(page);
    await expect(page.getByLabel(/^One-time code/)).toHaveAttribute('aria-invalid', 'false');
    const facts = section.getByRole('definition');
    await expect(section.getByRole('term')).toContainText(['API', 'Signed in as', 'Connected by', 'Token expires']);
    await expect(facts.nth(1)).toHaveText(aptible.email);
    await expect(facts.nth(2)).toContainText(names.owner);
    // Signed in with a one-time code, Berth asks for a 12-hour token, as Aptible's CLI does;
    // the page says when it ends (exactly on hover). Tokens are never renewed, so the page
    // warns in the last quarter of the token's life: not yet.
    const expiry = facts.nth(3).locator('time');
    await expect(expiry).toHaveText(/^in 1[12] hours$/);
    await expect(expiry).toHaveAttribute('datetime', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    await expect(facts.nth(3)).not.toContainText('soon');
    await expect(section.getByRole('button', { name: 'Disconnect (delete the token)' })).toBeVisible();
    // Nothing typed stays in the form, with JavaScript either (the page is not reloaded).
    await expect(page.getByLabel('Aptible e-mail')).toHaveValue('');
    await expect(page.getByLabel('Aptible password')).toHaveValue('');
    await expect(page.getByLabel(/^One-time code/)).toHaveValue('');
    await noSecrets();
  });

  await test.step('a new app on Aptible is refused at its field when Aptible has no such app', async () => {
    await goVia(page, 'Apps', new RegExp(`/teams/${team}/apps$`));
    await page.getByRole('link', { name: 'New app', exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/new$`));
    await settled(page);
    await fillNewAptibleApp(page, aptible.environment, 'no-such-app');
    await page.getByRole('button', { name: 'Create app' }).click();
    const appField = page.getByLabel('Aptible app (Aptible apps only)');
    await expect(appField).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
    await expect(appField).toHaveAccessibleDescription(new RegExp(`Aptible has no app no-such-app in environment ${aptible.environment}`));
    await expect(page.getByLabel('Aptible environment (Aptible apps only)')).toHaveAttribute('aria-invalid', 'false');
    await expect(page.getByRole('alert')).toHaveCount(0);
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/new(\\?.*)?$`));
    await settled(page);
  });

  await test.step('with the Aptible app handle of the stand-in the app is created', async () => {
    await fillNewAptibleApp(page, aptible.environment, aptible.app);
    await page.getByRole('button', { name: 'Create app' }).click();
    await expect(page).toHaveURL(appUrl);
    await settled(page);
    await expect(page.getByRole('heading', { level: 1, name: APP })).toBeVisible();
    await expect(page.getByText('Direct Docker Image deploy')).toBeVisible();
    await expect(page.getByText(`runs on Aptible as ${aptible.environment}/${aptible.app}`)).toBeVisible();
    await expect(page.getByRole('region', { name: 'Current release' })).toContainText('Not deployed yet.');
  });

  await test.step('the owner deploys the private image with credentials given; Berth forwards it to Aptible', async () => {
    await appTab(page, 'Deploy');
    const form = page.getByRole('region', { name: 'Deploy an image' });
    await form.getByLabel('Image', { exact: true }).fill(registry.image);
    await form.getByRole('radio', { name: 'A username and password (or token)' }).check();
    await form.getByLabel('Registry username').fill(registry.user);
    await form.getByLabel('Registry password or token').fill(registry.password);
    await form.getByRole('radio', { name: 'Remember for this app' }).check();
    await form.getByRole('button', { name: 'Verify and deploy' }).click();
    await followToSuccess(page, team, 'Deploy', 'deploy');
    const log = page.getByRole('log');
    await expect(log).toContainText(`${registry.image} resolved to ${registry.digest} before queuing`);
    await expect(log).toContainText(`image ${registry.image}; with the registry login`);
    await expect(log).toContainText(`Pulling from ${registry.image}`);
    await expect(page.getByText(registry.digest, { exact: true })).toBeVisible();
    await expect(page.getByText('given with this deploy', { exact: true })).toBeVisible();
    await noSecrets();
  });

  await test.step('the app page shows the release on Aptible', async () => {
    await backToApp(page, team);
    const release = page.getByRole('region', { name: 'Current release' });
    await expect(release.getByText(registry.digest, { exact: true })).toBeVisible();
    await expect(release).toContainText(`served by Aptible (app ${aptible.environment}/${aptible.app})`);
    await expect(operationRows(page)).toHaveCount(1);
    await expect(operationRows(page).first()).toContainText('succeeded');
    await noSecrets();
  });

  await test.step('a configuration change is forwarded to Aptible: secret values stay out of the page and its log', async () => {
    await appTab(page, 'Configuration');
    const form = page.getByRole('form', { name: 'Change configuration' });
    await form.getByLabel('Secret variables to set or unset').fill(`API_TOKEN=${secretValue}`);
    await form.getByLabel('Plain (visible) variables (optional)').fill('GREETING=hello');
    await form.getByRole('button', { name: 'Apply configuration' }).click();
    await followToSuccess(page, team, 'Configure', 'configure');
    const log = page.getByRole('log');
    await expect(log).toContainText('configuration API_TOKEN, GREETING');
    // Aptible's log repeats the values it was given; Berth keeps the secret one redacted.
    await expect(log).toContainText('Configuration: API_TOKEN=[redacted]');
    await expect(log).toContainText('Configuration: GREETING=hello');
    await noSecrets();
    await backToApp(page, team);
    await appTab(page, 'Configuration');
    const config = page.getByRole('table', { name: 'Configuration variables' });
    await expect(config.getByRole('row', { name: /API_TOKEN/ })).toContainText('secret, write-only');
    await expect(config.getByRole('row', { name: /GREETING/ })).toContainText('hello');
    await noSecrets();
  });

  await test.step('a restart is forwarded to Aptible', async () => {
    await page.getByRole('region', { name: 'Restart' }).getByRole('button', { name: 'Restart' }).click();
    await followToSuccess(page, team, 'Restart', 'restart');
    await noSecrets();
    await backToApp(page, team);
    // Aptible keeps the running app's output: the Logs tab says where to read it.
    await appTab(page, 'Logs');
    await expect(page.getByRole('region', { name: 'Output of the running release' })).toContainText(
      `aptible logs --app ${aptible.app}`,
    );
    await appTab(page, 'Overview');
    await expect(operationRows(page)).toHaveCount(3);
    for (const kind of ['restart', 'configure', 'deploy']) {
      await expect(operationRows(page).filter({ hasText: kind })).toContainText('succeeded');
    }
    await noSecrets();
  });
});

/**
 * A repository in the temporary directory (a local root Berth may read) whose Dockerfile
 * builds on the registry's private image, with one commit on `main`. Answers its path and
 * that commit.
 */
function makeRepository(base: string, id: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-e2e-aptible-repo-'));
  git(dir, 'init', '-q', '-b', 'main');
  writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${base}\nCOPY hello.txt /www/hello.txt\n`);
  writeFileSync(path.join(dir, 'hello.txt'), `Hello from ${id}\n`);
  git(dir, 'add', 'Dockerfile', 'hello.txt');
  git(dir, 'commit', '-q', '-m', 'Serve hello.txt');
  return { dir, main: git(dir, 'rev-parse', 'main') };
}

test('an owner deploys a Dockerfile app on Aptible: the commit is pushed with the team deploy key, then built there with the registry login', async ({
  page,
}, testInfo) => {
  test.setTimeout(240_000);
  const aptible = testAptible();
  const registry = testRegistry();
  const gitHost = testGitHost();
  // This project's Aptible app, with a git remote of its own on the git host.
  const remote = testAptibleGitApp(testInfo);
  const names = uniqueNames(testInfo, 'aptible-build');
  const team = names.teamHandle;
  const handle = 'site';
  const appUrl = new RegExp(`/teams/${team}/apps/${handle}$`);
  const platformsUrl = new RegExp(`/teams/${team}/platforms$`);
  const noSecrets = async () => {
    const content = await everything(page);
    expect(content).not.toContain(registry.password);
    expect(content).not.toContain(aptible.password);
    expect(content).not.toContain(aptible.token);
    expect(page.url()).not.toContain(registry.password);
  };
  const repo = makeRepository(registry.image, team);
  try {
    await test.step('the owner signs up and connects the team to Aptible', async () => {
      await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: team });
      await goVia(page, 'Platforms', platformsUrl);
      await page.getByLabel('Aptible e-mail').fill(aptible.email);
      await page.getByLabel('Aptible password').fill(aptible.password);
      await page.getByLabel(/^One-time code/).fill(aptible.otp);
      await page.getByRole('button', { name: 'Connect to Aptible' }).click();
      await expect(aptibleSection(page).getByRole('heading', { level: 2 })).toHaveText('Aptible Connected', { timeout: 30_000 });
      await expect(page).toHaveURL(platformsUrl);
      await settled(page);
    });

    let publicKey = '';
    await test.step('the team has no deploy key yet; the owner makes one and reads it on the Platforms page', async () => {
      const keySection = page.getByRole('region', { name: 'Deploy key for Aptible' });
      await expect(keySection).toContainText('The team has no deploy key yet');
      await keySection.getByRole('link', { name: 'Members page' }).first().click();
      await expect(page).toHaveURL(new RegExp(`/teams/${team}/members#deploy-key$`));
      await settled(page);
      const members = page.getByRole('region', { name: 'Deploy key', exact: true });
      await members.getByRole('button', { name: 'Generate a key' }).click();
      await expect(members.getByLabel('Public key')).toContainText('ssh-ed25519 ', { timeout: 30_000 });
      await settled(page);
      await goVia(page, 'Platforms', platformsUrl);
      const shown = keySection.getByLabel('Public key');
      await expect(shown).toContainText(/^ssh-ed25519 \S+/);
      await expect(keySection).toContainText('to Aptible as an SSH key');
      publicKey = (await shown.innerText()).trim();
      // The owner adds it to Aptible (here, the git host Aptible's remotes are on).
      authorize(gitHost, publicKey);
    });

    await test.step('the owner creates a Dockerfile app on Aptible from the repository', async () => {
      await goVia(page, 'Apps', new RegExp(`/teams/${team}/apps$`));
      await page.getByRole('link', { name: 'New app', exact: true }).click();
      await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/new$`));
      await settled(page);
      await page.getByLabel('Handle', { exact: true }).fill(handle);
      await page.getByRole('radio', { name: 'Dockerfile', exact: true }).check();
      await page.getByLabel('Repository URL').fill(repo.dir);
      await page.getByRole('radio', { name: 'Aptible', exact: true }).check();
      await page.getByLabel('Aptible environment (Aptible apps only)').fill(remote.environment);
      await page.getByLabel('Aptible app (Aptible apps only)').fill(remote.app);
      await page.getByRole('button', { name: 'Create app' }).click();
      await expect(page).toHaveURL(appUrl, { timeout: 30_000 });
      await settled(page);
      await expect(page.getByRole('heading', { level: 1, name: handle })).toBeVisible();
      await expect(page.getByText(/^Dockerfile deploy · runs on Aptible as/)).toContainText(`${remote.environment}/${remote.app}`);
      await expect(page.getByRole('region', { name: 'Current release' })).toContainText('Not deployed yet.');
    });

    await test.step('the owner deploys main with the registry credentials: Berth pushes it, and Aptible builds that branch', async () => {
      await appTab(page, 'Deploy');
      const form = page.getByRole('region', { name: 'Deploy a branch, tag or commit' });
      await form.getByLabel('Git ref').fill('main');
      await form.getByLabel('Registry username').fill(registry.user);
      await form.getByLabel('Registry password or token').fill(registry.password);
      await form.getByLabel('Send APTIBLE_PRIVATE_REGISTRY_* to').selectOption(registry.host);
      await form.getByRole('button', { name: 'Verify, build and deploy' }).click();
      const id = await followToSuccess(page, team, 'Deploy', 'deploy');
      const branch = `berth-deploy-${id}`;
      const log = page.getByRole('log');
      await expect(log).toContainText(`Pushing commit ${repo.main} to ssh://`);
      await expect(log).toContainText(`Pushed ${repo.main.slice(0, 7)}`);
      await expect(log).toContainText(`Building git ref ${branch}`);
      // Aptible's log repeats the configuration it was given; Berth keeps the password redacted.
      await expect(log).toContainText('APTIBLE_PRIVATE_REGISTRY_PASSWORD=[redacted]');
      await expect(page.getByText(repo.main, { exact: true })).toBeVisible();
      await expect(page.getByText("given with this deploy (now the app's APTIBLE_PRIVATE_REGISTRY_* configuration)", { exact: true })).toBeVisible();
      // The commit reached Aptible's git remote on Berth's own branch, and only there.
      expect(branchCommit(remote.repository, branch), `${branch} in ${remote.repository}`).toBe(repo.main);
      expect(branches(remote.repository)).toEqual([branch]);
      await noSecrets();
    });

    await test.step('the app page shows the deploy succeeded, and the password nowhere', async () => {
      await page.getByRole('link', { name: handle, exact: true }).first().click();
      await expect(page).toHaveURL(appUrl);
      await settled(page);
      await expect(operationRows(page)).toHaveCount(1);
      await expect(operationRows(page).first()).toContainText('succeeded');
      await appTab(page, 'Configuration');
      const config = page.getByRole('table', { name: 'Configuration variables' });
      await expect(config.getByRole('row').filter({ hasText: 'APTIBLE_PRIVATE_REGISTRY_PASSWORD' })).toContainText('write-only');
      await noSecrets();
    });
  } finally {
    rmSync(repo.dir, { recursive: true, force: true });
  }
});
