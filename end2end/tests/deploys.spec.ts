// Direct Docker Image deploys, against the real registry that global-setup.ts started and
// the server's local engine (buildah): an owner creates an app, deploys the private image
// with new credentials remembered for the app, follows the operation live (an EventSource
// with JavaScript, a self-refreshing page without) through verify → pull → start → health
// check → switch, sees the exact digest, and reaches the release at its URL. A second deploy
// uses the remembered credentials; a deploy with a wrong password is refused at the password
// field as wrong_credentials before anything is queued. No page ever holds the password.
// Runs with JavaScript on ("hydrate") and off ("ssr").
import {
  appTab,
  everything,
  expect,
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

const APP = 'web';
/** Pulling and starting a release takes a while on a loaded machine. */
const DEPLOY_TIMEOUT = 90_000;
const GREETING = "Hello from Berth's test image";
const STEPS = ['Verify', 'Pull', 'Start', 'Health check', 'Switch'];

function deployForm(page: Page) {
  return page.getByRole('region', { name: 'Deploy an image' });
}

/** The app's recent operations, one row each (the header row left out). */
function operationRows(page: Page) {
  return page
    .getByRole('region', { name: 'Recent operations' })
    .getByRole('table', { name: 'Recent operations' })
    .getByRole('row')
    .filter({ has: page.getByRole('link', { name: /^#\d+$/ }) });
}

/** Fills the deploy form with `image` and new credentials, remembered for the app. */
async function deployWithNewCredentials(page: Page, image: string, username: string, password: string) {
  const form = deployForm(page);
  await form.getByLabel('Image', { exact: true }).fill(image);
  await form.getByRole('radio', { name: 'A username and password (or token)' }).check();
  await form.getByLabel('Registry username').fill(username);
  await form.getByLabel('Registry password or token').fill(password);
  await form.getByRole('radio', { name: 'Remember for this app' }).check();
  await form.getByRole('button', { name: 'Verify and deploy' }).click();
}

/**
 * On an operation's page: follows it until it has succeeded, with every step done, and
 * answers its id. When it was still running as the page first showed it, the page must
 * have followed it live: with JavaScript in place through the event stream, without by
 * refreshing itself.
 */
async function followToSuccess(page: Page, team: string, js: boolean, seen: ReturnType<typeof watchOperation>): Promise<number> {
  await expect(page).toHaveURL(new RegExp(`/teams/${team}/operations/\\d+$`), { timeout: 30_000 });
  const id = Number(/\/operations\/(\d+)$/.exec(page.url())![1]);
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
  // The log fills as the operation runs; its last step announces the switch.
  const log = page.getByRole('log');
  await expect(log).toContainText('==> Switch', { timeout: DEPLOY_TIMEOUT });
  await expect(heading).toHaveAccessibleName(`Deploy #${id} succeeded`, { timeout: DEPLOY_TIMEOUT });
  let live: boolean;
  if (js) {
    expect(
      await page.evaluate(() => (window as unknown as { __e2eLive?: boolean }).__e2eLive),
      'the operation page followed the deploy in place, without reloading',
    ).toBe(true);
    live = first !== 'succeeded';
    if (live) expect(seen.eventStreams, 'the running operation was followed through its event stream').toBeGreaterThan(0);
  } else {
    const statuses = seen.documents.map(servedStatus);
    live = statuses[0] !== 'succeeded';
    if (live) {
      expect(seen.documents[0], 'a running operation\'s page refreshes itself').toContain('http-equiv="refresh"');
      expect(statuses.length, 'the page was served again as the operation went on').toBeGreaterThan(1);
      expect(statuses.at(-1)).toBe('succeeded');
    }
  }
  test.info().annotations.push({
    type: 'live view',
    description: live
      ? js
        ? `deploy #${id}: shown as ${first}, followed through ${seen.eventStreams} event stream(s)`
        : `deploy #${id}: served as ${seen.documents.map(servedStatus).join(' → ')}`
      : `deploy #${id}: already succeeded when first shown`,
  });
  seen.stop();
  await settled(page);
  for (const step of STEPS) {
    await expect(steps.getByRole('listitem').filter({ hasText: new RegExp(`^\\W*${step}`) })).toContainText('done');
  }
  for (const step of STEPS) await expect(log).toContainText(`==> ${step}`);
  await expect(page.getByRole('heading', { level: 2, name: 'Log' })).not.toContainText('live');
  await expect(page.getByRole('alert')).toHaveCount(0);
  return id;
}

test('an owner deploys a private image with credentials remembered for the app, redeploys with them, and a wrong password is refused', async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(240_000);
  const js = usesJs(testInfo);
  const registry = testRegistry();
  const names = uniqueNames(testInfo, 'deploy');
  const team = names.teamHandle;
  const appUrl = new RegExp(`/teams/${team}/apps/${APP}$`);
  const wrongPassword = `not-${registry.password}`;
  const noSecrets = async () => {
    const content = await everything(page);
    expect(content).not.toContain(registry.password);
    expect(content).not.toContain(wrongPassword);
  };

  await test.step('the owner signs up and finds no apps yet', async () => {
    await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: team });
    await nav(page).getByRole('link', { name: 'Apps', exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps$`));
    await settled(page);
    await expect(page.getByRole('heading', { level: 1, name: 'Apps' })).toBeVisible();
    await expect(nav(page).getByRole('link', { name: 'Apps', exact: true })).toHaveAttribute('aria-current', 'page');
    await expect(page.getByText(/^No apps yet\./)).toBeVisible();
  });

  await test.step('the owner creates an app deployed from an image', async () => {
    await page.getByRole('link', { name: 'New app', exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/new$`));
    await settled(page);
    await expect(page.getByRole('heading', { level: 1, name: 'New app' })).toBeVisible();
    await page.getByLabel('Handle', { exact: true }).fill(APP);
    await page.getByRole('radio', { name: 'Direct Docker Image' }).check();
    await expect(page.getByRole('radio', { name: /^Dockerfile/ })).toBeEnabled();
    await page.getByRole('button', { name: 'Create app' }).click();
    await expect(page).toHaveURL(appUrl);
    await settled(page);
    await expect(page.getByRole('heading', { level: 1, name: APP })).toBeVisible();
    await expect(page.getByText('Direct Docker Image deploy')).toBeVisible();
    await expect(page.getByRole('region', { name: 'Current release' })).toContainText('Not deployed yet.');
    await expect(page.getByText('No operations yet: a deploy will be the first.')).toBeVisible();
    // The app's pages are tabs; the overview is the current one and leads to the deploy form.
    await expect(page.getByRole('navigation', { name: 'App' }).getByRole('link', { name: 'Overview', exact: true })).toHaveAttribute(
      'aria-current',
      'page',
    );
    await expect(page.getByRole('region', { name: 'Deploy an image' })).toHaveCount(0);
  });

  let firstId = 0;
  let lastId = 0;
  await test.step('the owner deploys the private image with new credentials, remembered for the app', async () => {
    await appTab(page, 'Deploy');
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/${APP}/deploy$`));
    const seen = watchOperation(page);
    await deployWithNewCredentials(page, registry.image, registry.user, registry.password);
    firstId = await followToSuccess(page, team, js, seen);
    await expect(page.getByText(registry.digest, { exact: true })).toBeVisible();
    // The operation page's digest has a copy button too once JavaScript runs.
    if (js) await expect(page.getByRole('button', { name: 'Copy digest' })).toBeVisible();
    else await expect(page.getByRole('button', { name: 'Copy digest' })).toBeHidden();
    await expect(page.getByText(registry.image, { exact: true })).toBeVisible();
    await expect(page.getByText('given with this deploy', { exact: true })).toBeVisible();
    await noSecrets();
  });

  let url = '';
  await test.step('the app page shows the release, its digest and URL, which serves the image', async () => {
    // The breadcrumb and the operation's facts both link to the app.
    await page.getByRole('link', { name: APP, exact: true }).first().click();
    await expect(page).toHaveURL(appUrl);
    await settled(page);
    const release = page.getByRole('region', { name: 'Current release' });
    await expect(release.getByText(registry.digest, { exact: true })).toBeVisible();
    await expect(release.getByText(registry.image, { exact: true })).toBeVisible();
    await expect(release.getByRole('link', { name: `operation #${firstId}` })).toBeVisible();
    const link = release.getByRole('link', { name: /^http:\/\/127\.0\.0\.1:\d+\/$/ });
    await expect(link).toBeVisible();
    url = (await link.getAttribute('href'))!;
    expect(url).toMatch(/^https?:\/\/[^/]+/);
    await expect(async () => {
      const res = await request.get(url, { timeout: 5_000 });
      expect(res.status()).toBe(200);
      expect(await res.text()).toContain(GREETING);
    }).toPass({ timeout: 30_000 });
    // Its named address (`APP.TEAM.localhost`), which the browser resolves to this machine.
    const named = release.getByRole('link', { name: /^http:\/\/[a-z0-9-]+\.[a-z0-9-]+\.localhost:\d+\/$/ });
    await expect(named).toBeVisible();
    const served = await page.context().newPage();
    await served.goto((await named.getAttribute('href'))!);
    await expect(served.locator('body')).toContainText(GREETING);
    await served.close();
    await expect(operationRows(page)).toHaveCount(1);
    await expect(operationRows(page).first()).toContainText('succeeded');
    await noSecrets();
    // The digest is cut short where space is short, whole in its title, with a copy button
    // once JavaScript runs.
    await expect(release.locator('code.digest')).toHaveAttribute('title', registry.digest);
    if (js) await expect(release.getByRole('button', { name: 'Copy digest' })).toBeVisible();
    else await expect(release.getByRole('button', { name: 'Copy digest' })).toBeHidden();
    await appTab(page, 'Deploy');
    const credentials = page.getByRole('region', { name: 'Registry credentials' });
    await expect(credentials).toContainText(`${registry.user}@${registry.host}`);
    await expect(credentials).toContainText('none: the team has no registry credentials');
    await noSecrets();
    // The Logs tab: what the running release printed, read again while "Follow" is on.
    await appTab(page, 'Logs');
    const output = page.getByRole('log', { name: 'Output, newest last' });
    await expect(output).toContainText('serving on port');
    const follow = page.getByRole('checkbox', { name: /^Follow/ });
    if (js) {
      await expect(follow).toBeChecked();
      const again = await page.waitForResponse((r) => r.url().includes('load_app_log'), { timeout: 15_000 });
      expect(again.status()).toBe(200);
      await expect(output).toContainText('serving on port');
    } else {
      await expect(follow).toBeHidden();
    }
    await noSecrets();
    await appTab(page, 'Overview');
  });

  await test.step("the team's overview lists the app with its release and last operation", async () => {
    await nav(page).getByRole('link', { name: 'Overview', exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}$`));
    await settled(page);
    const apps = page.getByRole('table', { name: 'Apps, those that need attention first' });
    const row = apps.getByRole('row').filter({ has: page.getByRole('link', { name: APP, exact: true }) });
    await expect(row).toContainText(registry.digest.slice(0, 'sha256:'.length + 12));
    await expect(row).toContainText('succeeded');
    await expect(page.getByRole('region', { name: 'Apps', exact: true }).getByRole('status')).toHaveCount(0);
  });

  await test.step('the apps list shows the release', async () => {
    await nav(page).getByRole('link', { name: 'Apps', exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps$`));
    await settled(page);
    const row = page.getByRole('table', { name: 'Apps' }).getByRole('row').filter({ has: page.getByRole('link', { name: APP, exact: true }) });
    await expect(row).toContainText('Direct Docker Image');
    await expect(row).toContainText(registry.digest.slice(0, 'sha256:'.length + 12));
    // The list links the app's named address.
    await expect(row.getByRole('link', { name: /^http:\/\/[a-z0-9-]+\.[a-z0-9-]+\.localhost:\d+\/$/ })).toBeVisible();
    await expect(row).toContainText('succeeded');
    await row.getByRole('link', { name: APP, exact: true }).click();
    await expect(page).toHaveURL(appUrl);
    await settled(page);
  });

  await test.step('a second deploy uses the credentials remembered on the app', async () => {
    await appTab(page, 'Deploy');
    const form = deployForm(page);
    const remembered = form.getByRole('radio', { name: 'Remembered on this app' });
    await expect(remembered).toBeChecked();
    await expect(remembered).toHaveAccessibleDescription(new RegExp(`${registry.user}@${registry.host}`.replace(/[.]/g, '\\.')));
    await expect(form.getByLabel('Image', { exact: true })).toHaveValue(registry.image);
    await expect(form.getByLabel('Registry password or token')).toHaveValue('');
    await noSecrets();
    await remembered.check();
    const seen = watchOperation(page);
    await form.getByRole('button', { name: 'Verify and deploy' }).click();
    const secondId = await followToSuccess(page, team, js, seen);
    lastId = secondId;
    expect(secondId).toBeGreaterThan(firstId);
    await expect(page.getByText('remembered on the app', { exact: true })).toBeVisible();
    await expect(page.getByText(registry.digest, { exact: true })).toBeVisible();
    await noSecrets();

    // The breadcrumb and the operation's facts both link to the app.
    await page.getByRole('link', { name: APP, exact: true }).first().click();
    await expect(page).toHaveURL(appUrl);
    await settled(page);
    const release = page.getByRole('region', { name: 'Current release' });
    await expect(release.getByRole('link', { name: `operation #${secondId}` })).toBeVisible();
    await expect(release.getByText(registry.digest, { exact: true })).toBeVisible();
    const link = release.getByRole('link', { name: /^http:\/\/127\.0\.0\.1:\d+\/$/ });
    // The app's address did not change with the deploy.
    expect(await link.getAttribute('href')).toBe(url);
    url = (await link.getAttribute('href'))!;
    await expect(async () => {
      const res = await request.get(url, { timeout: 5_000 });
      expect(res.status()).toBe(200);
      expect(await res.text()).toContain(GREETING);
    }).toPass({ timeout: 30_000 });
    await expect(operationRows(page)).toHaveCount(2);
  });

  await test.step('a tag that does not exist is refused at the image field, not at the credentials', async () => {
    await appTab(page, 'Deploy');
    const form = deployForm(page);
    const missing = registry.image.replace(/:[^:/]+$/, ':no-such-tag');
    await form.getByLabel('Image', { exact: true }).fill(missing);
    await form.getByRole('radio', { name: 'Remembered on this app' }).check();
    await form.getByRole('button', { name: 'Verify and deploy' }).click();
    const image = deployForm(page).getByLabel('Image', { exact: true });
    await expect(image).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
    await expect(image).toHaveAccessibleDescription(/not found/);
    await expect(deployForm(page).getByText('not found', { exact: true })).toBeVisible();
    await expect(deployForm(page).getByText('not_found', { exact: true })).toHaveCount(0);
    await expect(image).toHaveValue(missing);
    await settled(page);
  });

  await test.step('a wrong image and a missing password are named together, each at its field', async () => {
    await appTab(page, 'Deploy');
    const form = deployForm(page);
    // The server's checks, not the browser's: they are what every client gets.
    await form
      .locator('form')
      .filter({ has: page.getByRole('button', { name: 'Verify and deploy' }) })
      .evaluate((f: HTMLFormElement) => (f.noValidate = true));
    await form.getByLabel('Image', { exact: true }).fill('Not An Image!');
    await form.getByRole('radio', { name: 'A username and password (or token)' }).check();
    await form.getByLabel('Registry username').fill(registry.user);
    await form.getByRole('button', { name: 'Verify and deploy' }).click();
    const image = deployForm(page).getByLabel('Image', { exact: true });
    const password = deployForm(page).getByLabel('Registry password or token');
    await expect(image).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
    await expect(password).toHaveAttribute('aria-invalid', 'true');
    await expect(password).toHaveAccessibleDescription(/password/i);
    await expect(image).toHaveValue('Not An Image!');
    await expect(deployForm(page).getByLabel('Registry username')).toHaveValue(registry.user);
    await settled(page);
  });

  await test.step('a deploy with a wrong password fails verification at the password field and queues nothing', async () => {
    await appTab(page, 'Deploy');
    await deployWithNewCredentials(page, registry.image, registry.user, wrongPassword);
    const password = deployForm(page).getByLabel('Registry password or token');
    await expect(password).toHaveAttribute('aria-invalid', 'true', { timeout: 30_000 });
    await expect(password).toHaveAccessibleDescription(/wrong credentials/);
    await expect(deployForm(page).getByText('wrong credentials', { exact: true })).toBeVisible();
    // Without JavaScript the form posts and the server sends the browser back to the page,
    // the error kept in the session, not in the address; either way the form keeps what was
    // typed (the image, the choice, the username), never the password.
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/${APP}/deploy$`));
    await expect(deployForm(page).getByLabel('Image', { exact: true })).toHaveValue(registry.image);
    await expect(deployForm(page).getByRole('radio', { name: 'A username and password (or token)' })).toBeChecked();
    await expect(deployForm(page).getByLabel('Registry username')).toHaveValue(registry.user);
    await settled(page);
    // With JavaScript the field keeps what was typed (the browser never sent it back), so
    // the served HTML is checked here and the fields once the page is reloaded.
    const html = await page.content();
    expect(html).not.toContain(wrongPassword);
    expect(html).not.toContain(registry.password);

    // The app still offers what it remembered, and the refused deploy left no trace.
    await open(page, `/teams/${team}/apps/${APP}/deploy`);
    await noSecrets();
    await expect(deployForm(page).getByRole('radio', { name: 'Remembered on this app' })).toBeChecked();
    await open(page, `/teams/${team}/apps/${APP}`);
    await noSecrets();
    await expect(operationRows(page)).toHaveCount(2);
    await expect(page.getByRole('region', { name: 'Current release' }).getByRole('link', { name: /^operation #/ })).toHaveText(
      `operation #${lastId}`,
    );
    await page.getByRole('link', { name: 'Full history' }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/${APP}/history$`));
    // Only read here: not `settled()`, whose test expects every form to get a submit handler,
    // and the history's filter form is a plain GET form that the app's script leaves alone.
    await expect(page.getByRole('heading', { level: 1, name: `History of ${APP}` })).toBeVisible();
    const history = page.getByRole('table', { name: 'Operations, newest first' });
    await expect(history.getByRole('row').filter({ has: page.getByRole('link', { name: /^#\d+$/ }) })).toHaveCount(2);
    await expect(history.getByRole('cell', { name: 'succeeded' })).toHaveCount(2);
    await noSecrets();
    // The chart counts what the table lists, filters included.
    // (The chart's summary is also its description, hence the paragraph.)
    const summary = (text: RegExp) => page.getByRole('paragraph').filter({ hasText: text });
    await expect(summary(/2 operations in the last \d+ days: 2 succeeded, 0 failed/)).toBeVisible();
    await page.goto(`/teams/${team}/apps/${APP}/history?status=failed`);
    await expect(summary(/No operations in the last \d+ days\./)).toBeVisible();
    await expect(page.getByText(/The busiest day had/)).toHaveCount(0);
  });
});
