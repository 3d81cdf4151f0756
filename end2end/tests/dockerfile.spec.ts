// Dockerfile deploys, against the real registry that global-setup.ts started, a real git
// repository made by the test, and the server's local engine (buildah): an owner creates a
// Dockerfile app from the repository, sees its branches listed as not yet deployed, deploys
// `main` with the private base image's registry credentials given in the deploy form (they
// become APTIBLE_PRIVATE_REGISTRY_* configuration changes of the same operation), follows
// the build live (an EventSource with JavaScript, a self-refreshing page without) through
// verify → build → start → health check → switch, then sees `main` deployed, `feature` not,
// and reaches the file the Dockerfile copied at the release's URL. A deploy of an unknown
// ref is refused at the git ref field. No page ever holds the registry password.
// Runs with JavaScript on ("hydrate") and off ("ssr").
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  appTab,
  everything,
  expect,
  git,
  nav,
  open,
  PASSWORD,
  servedStatus,
  settled,
  signUp,
  test,
  testRegistry,
  uniqueNames,
  usesJs,
  watchOperation,
} from './fixtures';
import type { Page } from '@playwright/test';

const APP = 'site';
/** Building (pulling the base, running a step) and starting a release takes a while on a loaded machine. */
const DEPLOY_TIMEOUT = 150_000;
const STEPS = ['Verify', 'Build', 'Start', 'Health check', 'Switch'];

/**
 * A fresh repository whose Dockerfile builds on the registry's private image: `main` and
 * `feature` each with their own hello.txt. Answers its path, texts and commits.
 */
function makeRepository(base: string, id: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-e2e-repo-'));
  const texts = { main: `Hello from main ${id}\n`, feature: `Hello from feature ${id}\n` };
  git(dir, 'init', '-q', '-b', 'main');
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    `# Built by Berth's browser tests\n` +
      `FROM ${base}\n` +
      `COPY hello.txt /www/hello.txt\n` +
      // Exec form: the image has busybox but no /bin/sh.
      `RUN ["/bin/busybox", "sh", "-c", "echo built > /www/run.txt"]\n`,
  );
  writeFileSync(path.join(dir, 'hello.txt'), texts.main);
  git(dir, 'add', 'Dockerfile', 'hello.txt');
  git(dir, 'commit', '-q', '-m', 'Serve hello.txt from main');
  git(dir, 'checkout', '-q', '-b', 'feature');
  writeFileSync(path.join(dir, 'hello.txt'), texts.feature);
  git(dir, 'commit', '-q', '-am', 'Say hello from feature');
  git(dir, 'checkout', '-q', 'main');
  return { dir, texts, commits: { main: git(dir, 'rev-parse', 'main'), feature: git(dir, 'rev-parse', 'feature') } };
}

function deployForm(page: Page) {
  return page.getByRole('region', { name: 'Deploy a branch, tag or commit' });
}

/** The row of `name` in the app's branches and tags. */
function refRow(page: Page, name: string) {
  return page
    .getByRole('table', { name: 'Branches and tags' })
    .getByRole('row')
    .filter({ has: page.getByRole('rowheader', { name, exact: true }) });
}

/** The "Deployed" cell (the last) of `name`'s row in the branches and tags. */
function deployedCell(page: Page, name: string) {
  return refRow(page, name).getByRole('cell').last();
}

test('an owner creates a Dockerfile app from a git repository, deploys a branch with registry credentials for its private base and watches it build', async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(240_000);
  const js = usesJs(testInfo);
  const registry = testRegistry();
  const names = uniqueNames(testInfo, 'build');
  const team = names.teamHandle;
  const appUrl = new RegExp(`/teams/${team}/apps/${APP}$`);
  const noSecrets = async () => {
    expect(await everything(page)).not.toContain(registry.password);
  };
  const repo = makeRepository(registry.image, names.teamHandle);
  try {
    await test.step('the owner signs up and creates a Dockerfile app from the repository', async () => {
      await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: team });
      await nav(page).getByRole('link', { name: 'Apps', exact: true }).click();
      await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps$`));
      await settled(page);
      await page.getByRole('link', { name: 'New app', exact: true }).click();
      await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/new$`));
      await settled(page);
      await expect(page.getByRole('heading', { level: 1, name: 'New app' })).toBeVisible();
      await page.getByLabel('Handle', { exact: true }).fill(APP);
      await page.getByRole('radio', { name: 'Dockerfile', exact: true }).check();
      await page.getByLabel('Repository URL').fill(repo.dir);
      await expect(page.getByLabel('Dockerfile path')).toHaveValue('Dockerfile');
      await expect(page.getByLabel('Build context')).toHaveValue('.');
      await page.getByRole('button', { name: 'Create app' }).click();
      await expect(page).toHaveURL(appUrl);
      await settled(page);
      await expect(page.getByRole('heading', { level: 1, name: APP })).toBeVisible();
      await expect(page.getByText('Dockerfile deploy', { exact: true })).toBeVisible();
      await expect(page.getByRole('region', { name: 'Current release' })).toContainText('Not deployed yet.');
    });

    await test.step('the app page lists both branches as not yet deployed', async () => {
      await appTab(page, 'Deploy');
      const source = page.getByRole('region', { name: 'Source' });
      await expect(source.getByText(repo.dir, { exact: true })).toBeVisible();
      for (const branch of ['main', 'feature'] as const) {
        const row = refRow(page, branch);
        await expect(row).toHaveCount(1);
        await expect(row).toContainText('branch');
        await expect(row).toContainText(repo.commits[branch].slice(0, 7));
        await expect(deployedCell(page, branch)).toHaveText('not yet deployed');
      }
      await expect(deployForm(page).getByLabel('Git ref')).toHaveValue('main');
      // The Aptible names of the build's registry login are explained where they appear.
      await page.getByText('What are the APTIBLE_PRIVATE_REGISTRY_* variables?').click();
      await expect(page.getByText(/the one registry they are sent to/)).toBeVisible();
      await noSecrets();
    });

    let id = 0;
    await test.step('the owner deploys main with the registry credentials and watches the build live', async () => {
      const form = deployForm(page);
      await form.getByLabel('Git ref').fill('main');
      await form.getByLabel('Registry username').fill(registry.user);
      await form.getByLabel('Registry password or token').fill(registry.password);
      // They go only to a registry the deployer confirms: the base image's.
      await form.getByLabel('Send APTIBLE_PRIVATE_REGISTRY_* to').selectOption(registry.host);
      const seen = watchOperation(page);
      await form.getByRole('button', { name: 'Verify, build and deploy' }).click();

      await expect(page).toHaveURL(new RegExp(`/teams/${team}/operations/\\d+$`), { timeout: 60_000 });
      id = Number(/\/operations\/(\d+)$/.exec(page.url())![1]);
      const heading = page.getByRole('heading', { level: 1 });
      await expect(heading).toContainText(`Deploy #${id}`);
      const first = js ? /queued|running|succeeded|failed|cancelled/.exec(await heading.innerText())?.[0] : undefined;
      await settled(page);
      if (js) {
        // A mark in the document: it survives only if the page is updated in place.
        await page.evaluate(() => ((window as unknown as { __e2eLive: boolean }).__e2eLive = true));
      }
      const steps = page.getByRole('list', { name: 'Steps' });
      await expect(steps.getByRole('listitem')).toHaveText(STEPS.map((s) => new RegExp(`^\\W*${s}`)));
      const log = page.getByRole('log');
      // The build step and buildah's own output appear as the operation runs.
      await expect(log).toContainText('==> Build', { timeout: DEPLOY_TIMEOUT });
      await expect(log).toContainText(/STEP \d+\/\d+: FROM/, { timeout: DEPLOY_TIMEOUT });
      await expect(log).toContainText('==> Switch', { timeout: DEPLOY_TIMEOUT });
      await expect(heading).toHaveAccessibleName(`Deploy #${id} succeeded`, { timeout: DEPLOY_TIMEOUT });
      let live: boolean;
      if (js) {
        expect(
          await page.evaluate(() => (window as unknown as { __e2eLive?: boolean }).__e2eLive),
          'the operation page followed the build in place, without reloading',
        ).toBe(true);
        live = first !== 'succeeded';
        if (live) expect(seen.eventStreams, 'the running operation was followed through its event stream').toBeGreaterThan(0);
      } else {
        const statuses = seen.documents.map(servedStatus);
        live = statuses[0] !== 'succeeded';
        if (live) {
          expect(seen.documents[0], "a running operation's page refreshes itself").toContain('http-equiv="refresh"');
          expect(statuses.length, 'the page was served again as the operation went on').toBeGreaterThan(1);
          expect(statuses.at(-1)).toBe('succeeded');
        }
      }
      expect(live, 'the build was still running when its page first showed').toBe(true);
      testInfo.annotations.push({
        type: 'live view',
        description: js
          ? `deploy #${id}: shown as ${first}, followed through ${seen.eventStreams} event stream(s)`
          : `deploy #${id}: served as ${seen.documents.map(servedStatus).join(' → ')}`,
      });
      seen.stop();
      await settled(page);
      for (const step of STEPS) {
        await expect(steps.getByRole('listitem').filter({ hasText: new RegExp(`^\\W*${step}`) })).toContainText('done');
        await expect(log).toContainText(`==> ${step}`);
      }
      await expect(log).toContainText('COPY hello.txt /www/hello.txt');
      await expect(page.getByRole('heading', { level: 2, name: 'Log' })).not.toContainText('live');
      await expect(page.getByRole('alert')).toHaveCount(0);
      // What ran: the ref, its commit, and the credentials as configuration changes of this operation.
      await expect(page.getByText('main', { exact: true })).toBeVisible();
      await expect(page.getByText(repo.commits.main, { exact: true })).toBeVisible();
      await expect(page.getByText("given with this deploy (now the app's APTIBLE_PRIVATE_REGISTRY_* configuration)", { exact: true })).toBeVisible();
      // A build is deployed again from its ref, not by its (local) image's digest.
      await expect(page.getByRole('button', { name: 'Redeploy this digest' })).toHaveCount(0);
      const changes = page.getByRole('definition').filter({ hasText: /set APTIBLE_PRIVATE_REGISTRY/ });
      await expect(changes).toContainText('set APTIBLE_PRIVATE_REGISTRY_USERNAME');
      await expect(changes).toContainText('set APTIBLE_PRIVATE_REGISTRY_PASSWORD');
      await noSecrets();
    });

    await test.step('the app page marks main deployed and feature not, and the release serves main', async () => {
      await page.getByRole('link', { name: APP, exact: true }).first().click();
      await expect(page).toHaveURL(appUrl);
      await settled(page);
      const release = page.getByRole('region', { name: 'Current release' });
      await expect(release.getByRole('link', { name: `operation #${id}` })).toBeVisible();
      const link = release.getByRole('link', { name: /^http:\/\/127\.0\.0\.1:\d+\/$/ });
      await expect(link).toBeVisible();
      const url = (await link.getAttribute('href'))!;
      expect(url).toMatch(/^https?:\/\/[^/]+/);
      await expect(async () => {
        const res = await request.get(new URL('hello.txt', url.endsWith('/') ? url : `${url}/`).toString(), { timeout: 5_000 });
        expect(res.status()).toBe(200);
        expect(await res.text()).toBe(repo.texts.main);
      }).toPass({ timeout: 30_000 });
      const run = await request.get(new URL('run.txt', url.endsWith('/') ? url : `${url}/`).toString(), { timeout: 5_000 });
      expect(await run.text(), 'the RUN step ran in the build').toBe('built\n');
      await appTab(page, 'Deploy');
      await expect(deployedCell(page, 'main')).toHaveText('deployed');
      await expect(deployedCell(page, 'feature')).toHaveText('not yet deployed');
      const source = page.getByRole('region', { name: 'Source' });
      await expect(source.getByText(repo.commits.main.slice(0, 12), { exact: true })).toBeVisible();
      // The credentials are stored as configuration, the password write-only.
      await appTab(page, 'Configuration');
      const config = page.getByRole('table', { name: 'Configuration variables' });
      await expect(config.getByRole('row').filter({ hasText: 'APTIBLE_PRIVATE_REGISTRY_USERNAME' })).toBeVisible();
      await expect(config.getByRole('row').filter({ hasText: 'APTIBLE_PRIVATE_REGISTRY_PASSWORD' })).toContainText('write-only');
      await noSecrets();
    });

    await test.step('a deploy of an unknown ref is refused at the git ref field', async () => {
      await appTab(page, 'Deploy');
      const form = deployForm(page);
      const gitRef = form.getByLabel('Git ref');
      await gitRef.fill('nope');
      // With credentials typed again: the refusal must not carry them back either.
      await form.getByLabel('Registry username').fill(registry.user);
      await form.getByLabel('Registry password or token').fill(registry.password);
      // They go only to a registry the deployer confirms: the base image's.
      await form.getByLabel('Send APTIBLE_PRIVATE_REGISTRY_* to').selectOption(registry.host);
      await form.getByRole('button', { name: 'Verify, build and deploy' }).click();
      await expect(gitRef).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
      await expect(gitRef).toHaveAccessibleDescription(/no branch, tag or commit named "nope"/);
      await expect(form.getByText(/no branch, tag or commit named "nope"/)).toBeVisible();
      // Without JavaScript the form posts and the server sends the browser back to the page
      // (the error in the session, not the address); the ref typed is still in its field.
      await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/${APP}/deploy$`));
      await expect(gitRef).toHaveValue('nope');
      await settled(page);
      // With JavaScript the field keeps what was typed (the browser never sent it back), so
      // the served HTML is checked here and the fields once the page is reloaded.
      expect(await page.content()).not.toContain(registry.password);
      await open(page, `/teams/${team}/apps/${APP}`);
      await noSecrets();
      const rows = page
        .getByRole('table', { name: 'Recent operations' })
        .getByRole('row')
        .filter({ has: page.getByRole('link', { name: /^#\d+$/ }) });
      await expect(rows).toHaveCount(1);
      await appTab(page, 'Deploy');
      await expect(deployedCell(page, 'main')).toHaveText('deployed');
      await expect(deployedCell(page, 'feature')).toHaveText('not yet deployed');
    });
  } finally {
    rmSync(repo.dir, { recursive: true, force: true });
  }
});
