// On a phone (390×844, the `phone` project): every page of a team with an app, a deploy, a
// credential and its history fits the screen's width. Long digests wrap, tables scroll
// inside their card, and the navigation folds into a menu above the page: nothing makes the
// page itself scroll sideways.
import type { Page } from '@playwright/test';
import { expect, open, teamPages, teamWithAnApp, test, uniqueNames } from './fixtures';

/** How far the page is wider than the screen, in CSS pixels (0: it fits). */
async function overflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

test('every page fits a phone screen without scrolling sideways', async ({ page, request }, testInfo) => {
  test.setTimeout(120_000);
  for (const path of ['/signin', '/signup']) {
    await open(page, path);
    expect(await overflow(page), path).toBeLessThanOrEqual(0);
  }
  // A long e-mail address: the history's "requested by" filter lists it in full.
  const names = uniqueNames(testInfo, 'phone');
  names.owner = `someone-with-a-rather-long-address.${names.owner}`;
  const { base, operation } = await teamWithAnApp(page, request, names);
  for (const path of teamPages(base, operation)) {
    await open(page, path);
    expect(await overflow(page), `${path} is wider than the screen`).toBeLessThanOrEqual(0);
  }
  // The navigation is a bar above the page with its links folded into a menu, not a
  // screenful of links; the menu opens (without script) and leads on.
  await open(page, base);
  const nav = page.getByRole('navigation', { name: 'Main' });
  expect((await nav.boundingBox())!.height).toBeLessThan(120);
  await expect(nav.getByRole('link', { name: 'Apps', exact: true })).toBeHidden();
  await nav.getByText('Menu', { exact: true }).click();
  await expect(nav.getByRole('link', { name: 'Apps', exact: true })).toBeVisible();
  expect(await overflow(page), 'the open menu').toBeLessThanOrEqual(0);
  await nav.getByRole('link', { name: 'Apps', exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`${base}/apps$`));
});
