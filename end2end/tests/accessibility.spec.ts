// axe-core over every page, signed out, as the team's owner and as a viewer: no violation
// of the WCAG 2.1 A and AA rules axe checks (titles, labels, contrast, landmarks, ARIA).
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { expect, MEMBER_PASSWORD, open, teamPages, teamWithAnApp, test, uniqueNames } from './fixtures';

async function violations(page: Page, path: string): Promise<string[]> {
  await open(page, path);
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  // axe did look: the rules that apply to a page of forms and tables passed.
  expect(results.passes.length, `${path}: rules axe checked`).toBeGreaterThan(10);
  expect(results.passes.map((p) => p.id)).toContain('document-title');
  return results.violations.map(
    (v) => `${path}: ${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`,
  );
}

test('axe finds nothing on any page, for an owner or a viewer', async ({ page, request, newPerson }, testInfo) => {
  test.skip(testInfo.project.name !== 'hydrate', 'the pages are the same in every project; checked once');
  test.setTimeout(180_000);
  const found: string[] = [];
  for (const path of ['/signin', '/signup']) found.push(...(await violations(page, path)));
  const names = uniqueNames(testInfo, 'axe');
  const { base, operation, headers } = await teamWithAnApp(page, request, names);
  for (const path of teamPages(base, operation)) found.push(...(await violations(page, path)));

  // A viewer: invited through the API, joins through the link.
  const added = await request.post(`/api/v1/teams/${names.teamHandle}/members`, {
    headers,
    data: { email: names.member, role: 'viewer' },
  });
  expect(added.status(), await added.text()).toBe(201);
  const viewer = await newPerson();
  const link = (await added.json()).invite_url as string;
  found.push(...(await violations(viewer, new URL(link).pathname)));
  await viewer.getByLabel('Password').fill(MEMBER_PASSWORD);
  await viewer.getByRole('button', { name: 'Join the team' }).click();
  await expect(viewer).toHaveURL(new RegExp(`${base}$`));
  for (const path of teamPages(base, operation)) found.push(...(await violations(viewer, path)));
  expect(found, 'axe violations').toEqual([]);
});
