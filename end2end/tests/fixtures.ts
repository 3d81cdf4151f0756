// Shared helpers for Berth's browser tests.
//
// The same tests run in two projects: "hydrate" (JavaScript on: the WebAssembly bundle
// wakes each server-rendered page's islands, whose forms are submitted by the app's script) and "ssr"
// (JavaScript off: forms post natively and the server redirects). Clicks made before
// hydration are lost, so in "hydrate" every page load is followed by `settled(page)`.
import { execFileSync } from 'node:child_process';
import type { AptibleGitApp } from '../global-setup';
import type { GitSshHostInfo } from '../git-ssh-host';
import { test as base, expect, type APIRequestContext, type BrowserContext, type Page, type Request, type Response, type TestInfo } from '@playwright/test';

export { expect };

/**
 * Runs before any page script: notes which forms got a submit listener (Leptos's
 * `ActionForm` adds one when its island wakes). Only observes; it changes nothing.
 */
function watchHydration() {
  const w = window as unknown as { __e2eForms: WeakSet<EventTarget> };
  w.__e2eForms = new WeakSet();
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (this: EventTarget, type: string, ...rest: unknown[]) {
    if (type === 'submit' && this instanceof HTMLFormElement) w.__e2eForms.add(this);
    return (add as (...a: unknown[]) => void).call(this, type, ...rest);
  } as typeof EventTarget.prototype.addEventListener;
}

/** True when the page runs the app's script (the "hydrate" project). */
export function usesJs(testInfo: TestInfo): boolean {
  return testInfo.project.use.javaScriptEnabled !== false;
}

/**
 * Waits until the current page is interactive: with JavaScript on, the page's script has
 * woken every island (the parts that run in the browser: the live operation view, the
 * deploy forms; every other form posts as it does without JavaScript) and marked the
 * document ready; without it, the document has loaded.
 */
export async function settled(page: Page, testInfo: TestInfo = base.info()): Promise<void> {
  await page.waitForLoadState('load');
  if (!usesJs(testInfo)) return;
  try {
    await page.waitForFunction(
      () => {
        const w = window as unknown as { __e2eForms?: WeakSet<EventTarget> };
        if (document.documentElement.dataset.islands !== 'ready') return false;
        // Every form inside an island has its handler.
        const forms = Array.from(document.querySelectorAll('leptos-island form'));
        return forms.every((f) => w.__e2eForms?.has(f));
      },
      undefined,
      { timeout: 15_000 },
    );
  } catch (error) {
    const heading = await page.locator('h1').first().textContent({ timeout: 1_000 }).catch(() => null);
    throw new Error(
      `${page.url()} did not finish waking its islands; its heading is ${JSON.stringify(heading)}. ` +
        (error as Error).message,
    );
  }
}

/** Opens `path` and waits until it is interactive. */
export async function open(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await settled(page);
}

/** Names that are unique per project and per run, since both projects share one server. */
export function uniqueNames(testInfo: TestInfo, label: string) {
  const id = `${testInfo.project.name}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  return {
    owner: `owner-${label}-${id}@example.test`,
    member: `member-${label}-${id}@example.test`,
    teamName: `Acme ${label} ${id}`,
    teamHandle: `${label}-${id}`.toLowerCase(),
  };
}

export const PASSWORD = 'correct horse battery';
export const MEMBER_PASSWORD = 'staple gun 12345';

/**
 * Prepares a browser context: the hydration watch, and a record of what went wrong in its
 * pages that no assertion would see (an uncaught exception or panic in the app's script, an
 * error it logged, a request that failed in the network, a request refused by the server's
 * CSRF protection).
 */
async function prepare(context: BrowserContext, problems: string[], js: boolean): Promise<void> {
  await context.addInitScript(watchHydration);
  context.on('weberror', (error) => problems.push(`uncaught in page: ${error.error().message}`));
  context.on('console', (message) => {
    // The browser logs every 4xx answer (a favicon, a refused sign-in) as such an error.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  context.on('requestfailed', (request) => {
    // Leaving a page cancels what it still loads (net::ERR_ABORTED); anything else is a fault.
    // With JavaScript off, Chromium blocks the preload of the app's script (reported as "csp").
    const reason = request.failure()?.errorText ?? 'unknown';
    if (reason.includes('ERR_ABORTED')) return;
    if (!js && reason === 'csp' && /\/pkg\/[^/]+\.(js|wasm)$/.test(new URL(request.url()).pathname)) return;
    problems.push(`request failed: ${request.method()} ${request.url()}: ${reason}`);
  });
  context.on('response', async (response) => {
    if (response.status() === 403 && (response.headers()['content-type'] || '').startsWith('text/html')) {
      const body = await response.text().catch(() => '');
      if (body.includes('Request refused')) {
        problems.push(`CSRF protection refused ${response.request().method()} ${response.url()}`);
      }
    }
  });
}

/** Whether the server that global-setup.ts started is still running. */
function serverRunning(): boolean {
  const pid = Number(process.env.BERTH_E2E_PID);
  if (!pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

type Fixtures = {
  /** Problems seen in the test's pages; the test fails if any were seen. */
  browserProblems: string[];
  /** Opens a new, signed-out browser context (another person) and a page in it. */
  newPerson: () => Promise<Page>;
};

export const test = base.extend<Fixtures>({
  browserProblems: [
    async ({}, use) => {
      const problems: string[] = [];
      await use(problems);
      expect(serverRunning(), 'the Berth server under test stopped (see test-results/berth-server.log)').toBe(true);
      expect(problems, 'problems in the browser').toEqual([]);
    },
    { auto: true },
  ],
  context: async ({ context, browserProblems }, use, testInfo) => {
    await prepare(context, browserProblems, usesJs(testInfo));
    await use(context);
  },
  newPerson: async ({ browser, browserProblems }, use, testInfo) => {
    const contexts: BrowserContext[] = [];
    await use(async () => {
      const context = await browser.newContext({
        baseURL: process.env.BERTH_E2E_BASE_URL,
        javaScriptEnabled: usesJs(testInfo),
      });
      contexts.push(context);
      await prepare(context, browserProblems, usesJs(testInfo));
      return context.newPage();
    });
    for (const context of contexts) await context.close();
  },
});

/** Signs up through /signup (open sign-up: the answer is the same for every address, so
 * the person signs in next); ends on the new team's overview. */
export async function signUp(
  page: Page,
  who: { email: string; password: string; teamName: string; teamHandle: string },
): Promise<void> {
  await open(page, '/signup');
  await page.getByLabel('E-mail').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByLabel('Team name').fill(who.teamName);
  await page.getByLabel('Team handle').fill(who.teamHandle);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/signin\?signed_up=1$/);
  await expect(page.getByText('If the address was new to Berth')).toBeVisible();
  await signIn(page, who.email, who.password);
  await expect(page).toHaveURL(new RegExp(`/teams/${who.teamHandle}$`));
  await expect(page.getByRole('heading', { level: 1, name: who.teamName })).toBeVisible();
  await settled(page);
}

/** Signs in through /signin; ends on the first team's overview. */
export async function signIn(page: Page, email: string, password: string): Promise<void> {
  await open(page, '/signin');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/teams\/[a-z0-9-]+$/);
  await settled(page);
}

/** The main navigation. */
export function nav(page: Page) {
  return page.getByRole('navigation', { name: 'Main' });
}

/** Follows a link in the main navigation and waits for the page. */
export async function goVia(
  page: Page,
  link: 'Overview' | 'Apps' | 'Members' | 'Credentials' | 'Platforms' | 'Audit' | 'API tokens',
  url: RegExp,
) {
  await nav(page).getByRole('link', { name: link, exact: true }).click();
  await expect(page).toHaveURL(url);
  await settled(page);
}

/**
 * The container registry that global-setup.ts started (htpasswd auth, plain HTTP; the server
 * trusts it through BERTH_INSECURE_REGISTRIES): its `host` (127.0.0.1:PORT), the pushed
 * `image` (`host/team/app:1.0`) and its manifest `digest`, and the one `user` and `password`.
 */
export function testRegistry() {
  const get = (key: string) => {
    const value = process.env[`BERTH_E2E_REGISTRY_${key}`];
    if (!value) throw new Error(`BERTH_E2E_REGISTRY_${key} is not set: global-setup.ts starts the test registry`);
    return value;
  };
  return { host: get('HOST'), image: get('IMAGE'), digest: get('DIGEST'), user: get('USER'), password: get('PASSWORD') };
}

/**
 * The ECR stand-in that global-setup.ts started: moto's AWS key (`accessKeyId`,
 * `secretAccessKey`) for the registry `host` (named in the server's BERTH_ECR_REGISTRY_HOSTS),
 * the `image` pushed there and its `digest`, and the password of every token moto mints.
 */
export function testEcr() {
  const get = (key: string) => {
    const value = process.env[`BERTH_E2E_ECR_${key}`];
    if (!value) throw new Error(`BERTH_E2E_ECR_${key} is not set: global-setup.ts starts the ECR stand-in`);
    return value;
  };
  return {
    host: get('REGISTRY_HOST'),
    image: get('IMAGE'),
    digest: get('DIGEST'),
    accessKeyId: get('ACCESS_KEY_ID'),
    secretAccessKey: get('SECRET_ACCESS_KEY'),
    tokenPassword: get('TOKEN_PASSWORD'),
  };
}

/**
 * The Aptible stand-in that global-setup.ts started (the server's BERTH_APTIBLE_API_URL and
 * _AUTH_URL point at it): its `apiUrl`, the one user's `email` and `password` and the
 * one-time code (`otp`) the user must give, a valid `token` for the user, and the
 * `environment` and `app` handles of an app on it.
 */
export function testAptible() {
  const get = (key: string) => {
    const value = process.env[`BERTH_E2E_APTIBLE_${key}`];
    if (!value) throw new Error(`BERTH_E2E_APTIBLE_${key} is not set: global-setup.ts starts the Aptible stand-in`);
    return value;
  };
  return {
    apiUrl: get('API_URL'),
    email: get('EMAIL'),
    password: get('PASSWORD'),
    otp: get('OTP'),
    token: get('TOKEN'),
    environment: get('ENVIRONMENT'),
    app: get('APP'),
  };
}

/**
 * The git host over ssh that global-setup.ts started (sshd + git-shell on loopback; the
 * server may reach it through BERTH_EGRESS_ALLOW): its `authority` (127.0.0.1:PORT) and the
 * `authorizedKeys` file it reads at every connection (see ../git-ssh-host.ts to add a key or
 * read a repository's branches).
 */
export function testGitHost(): GitSshHostInfo {
  const value = process.env.BERTH_E2E_GIT_HOST;
  if (!value) throw new Error('BERTH_E2E_GIT_HOST is not set: global-setup.ts starts the git host');
  return JSON.parse(value) as GitSshHostInfo;
}

/**
 * This project's app on the Aptible stand-in whose git remote is on the git host: its
 * `environment` and `app` handles and the bare `repository` (a path on this machine) that
 * Berth pushes to. Each project has its own, so the two never see each other's pushes.
 */
export function testAptibleGitApp(testInfo: TestInfo): AptibleGitApp {
  const value = process.env.BERTH_E2E_APTIBLE_GIT_APPS;
  if (!value) throw new Error('BERTH_E2E_APTIBLE_GIT_APPS is not set: global-setup.ts starts the Aptible stand-in');
  const app = (JSON.parse(value) as Record<string, AptibleGitApp>)[testInfo.project.name];
  if (!app) throw new Error(`the Aptible stand-in has no git app for the project ${testInfo.project.name}`);
  return app;
}

/** Runs git in `dir` with a fixed identity and no system or global configuration. */
export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Berth E2E', '-c', 'user.email=e2e@example.test', ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/** The sign-in page, exactly (as after signing out). */
export const SIGNIN_URL = /\/signin$/;
/** The sign-in page, possibly with the error of a form posted without JavaScript. */
export const SIGNIN_AFTER_ERROR_URL = /\/signin(\?.*)?$/;

/** The page as HTML, with the values typed into its fields (which `content()` leaves out). */
export async function everything(page: Page): Promise<string> {
  const values = await page
    .locator('input, textarea')
    .evaluateAll((fields) => fields.map((f) => (f as HTMLInputElement).value).join('\n'));
  return `${await page.content()}\n${values}`;
}

/** What the browser saw of an operation page while it ran; start it before submitting. */
export function watchOperation(page: Page) {
  const onRequest = (request: Request) => {
    if (/\/operations\/\d+\/events$/.test(new URL(request.url()).pathname)) seen.eventStreams++;
  };
  const onResponse = async (response: Response) => {
    const request = response.request();
    if (!request.isNavigationRequest() || !/\/operations\/\d+$/.test(new URL(response.url()).pathname)) return;
    seen.documents.push(await response.text().catch(() => ''));
  };
  const seen = {
    documents: [] as string[],
    eventStreams: 0,
    stop: () => {
      page.off('request', onRequest);
      page.off('response', onResponse);
    },
  };
  page.on('request', onRequest);
  page.on('response', onResponse);
  return seen;
}

/** The status an operation page was served with (its heading's badge). */
export function servedStatus(html: string): string | undefined {
  return /<h1[^>]*>[\s\S]*?status-(queued|running|succeeded|failed|cancelled)/.exec(html)?.[1];
}

/**
 * A signed-up owner's team with something on every page: an API token made in the console,
 * then through the API a registry credential `hub`, an app `web` with a deployed release (a
 * long digest) from the test registry. Ends with the owner signed in on `page`; answers the
 * team's path, the deploy's operation id and the API's headers.
 */
export async function teamWithAnApp(
  page: Page,
  request: APIRequestContext,
  names: ReturnType<typeof uniqueNames>,
): Promise<{ base: string; operation: number; headers: Record<string, string> }> {
  const registry = testRegistry();
  await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: names.teamHandle });
  await open(page, '/settings/tokens');
  await page.getByLabel('Token name').fill('setup');
  await page.getByRole('button', { name: 'Create token' }).click();
  const field = page.getByRole('textbox', { name: 'New API token' });
  await expect(field).toHaveValue(/\S{16,}/);
  const headers = { Authorization: `Bearer ${await field.inputValue()}` };
  const team = `/api/v1/teams/${names.teamHandle}`;
  const credential = await request.post(`${team}/credentials`, {
    headers,
    data: { name: 'hub', registry: registry.host, kind: 'basic', username: registry.user, secret: registry.password },
  });
  expect(credential.status()).toBe(201);
  expect((await request.post(`${team}/apps`, { headers, data: { handle: 'web', method: 'image' } })).status()).toBe(201);
  const deploy = await request.post(`${team}/apps/web/deploys`, { headers, data: { image: registry.image } });
  expect(deploy.status(), await deploy.text()).toBe(202);
  const operation: number = (await deploy.json()).operation.id;
  await expect(async () => {
    const answer = await request.get(`/api/v1/operations/${operation}`, { headers });
    expect((await answer.json()).operation.status).toBe('succeeded');
  }).toPass({ timeout: 60_000 });
  return { base: `/teams/${names.teamHandle}`, operation, headers };
}

/** Every page of a team made by `teamWithAnApp`, for checks that go over all of them. */
export function teamPages(base: string, operation: number): string[] {
  return [
    base,
    `${base}/apps`,
    `${base}/apps/new`,
    `${base}/apps/web`,
    `${base}/apps/web/deploy`,
    `${base}/apps/web/config`,
    `${base}/apps/web/logs`,
    `${base}/apps/web/history`,
    `${base}/history`,
    `${base}/operations/${operation}`,
    `${base}/credentials`,
    `${base}/credentials/new`,
    `${base}/credentials/hub`,
    `${base}/audit`,
    `${base}/members`,
    `${base}/platforms`,
    '/settings/tokens',
  ];
}


/**
 * Opens one of an app's tabs (Overview, Deploy, Configuration, Logs, History) by its link
 * and checks that it is marked as the current one.
 */
export async function appTab(page: Page, name: 'Overview' | 'Deploy' | 'Configuration' | 'Logs' | 'History'): Promise<void> {
  const tabs = page.getByRole('navigation', { name: 'App' });
  await tabs.getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('navigation', { name: 'App' }).getByRole('link', { name, exact: true })).toHaveAttribute(
    'aria-current',
    'page',
  );
  // The history's filter form is a plain GET form that the app's script leaves alone.
  if (name !== 'History') await settled(page);
}
