// On a phone (390×844, the `phone` project): every page of a team with an app, a deploy, a
// credential and its history fits the screen's width. Long digests wrap, tables scroll
// inside their card, and the navigation is a compact bar above the page: nothing makes the
// page itself scroll sideways.
import type { Page } from '@playwright/test';
import { expect, open, PASSWORD, signUp, test, testRegistry, uniqueNames } from './fixtures';

/** How far the page is wider than the screen, in CSS pixels (0: it fits). */
async function overflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

test('every page fits a phone screen without scrolling sideways', async ({ page, request }, testInfo) => {
  test.setTimeout(120_000);
  const names = uniqueNames(testInfo, 'phone');
  const registry = testRegistry();
  for (const path of ['/signin', '/signup']) {
    await open(page, path);
    expect(await overflow(page), path).toBeLessThanOrEqual(0);
  }
  await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: names.teamHandle });

  // A token from the console, then the team's content through the API: a credential, an
  // app with a deployed release (a long digest) and a configuration change.
  await open(page, '/settings/tokens');
  await page.getByLabel('Token name').fill('phone');
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
  const id = (await deploy.json()).operation.id;
  await expect(async () => {
    const operation = await request.get(`/api/v1/operations/${id}`, { headers });
    expect((await operation.json()).operation.status).toBe('succeeded');
  }).toPass({ timeout: 60_000 });

  const base = `/teams/${names.teamHandle}`;
  for (const path of [
    base,
    `${base}/apps`,
    `${base}/apps/new`,
    `${base}/apps/web`,
    `${base}/apps/web/history`,
    `${base}/history`,
    `${base}/operations/${id}`,
    `${base}/credentials`,
    `${base}/credentials/new`,
    `${base}/credentials/hub`,
    `${base}/audit`,
    `${base}/members`,
    `${base}/platforms`,
    '/settings/tokens',
  ]) {
    await open(page, path);
    expect(await overflow(page), `${path} is wider than the screen`).toBeLessThanOrEqual(0);
  }
  // The navigation is a bar above the page, not a screenful of links.
  await open(page, base);
  const nav = await page.getByRole('navigation', { name: 'Main' }).boundingBox();
  expect(nav!.height).toBeLessThan(250);
});
