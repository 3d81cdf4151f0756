// API tokens: created on /settings/tokens, shown once, accepted by the JSON API, and refused
// once revoked.
import { expect, goVia, PASSWORD, signUp, test, uniqueNames, settled } from './fixtures';

test('an API token created in the console authenticates the JSON API until revoked', async ({
  page,
  request,
}, testInfo) => {
  const names = uniqueNames(testInfo, 'tok');
  await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: names.teamHandle });
  await goVia(page, 'API tokens', /\/settings\/tokens$/);
  await expect(page.getByRole('heading', { level: 1, name: 'API tokens' })).toBeVisible();

  const tokenName = `CI ${testInfo.project.name}`;
  await page.getByLabel('Token name').fill(tokenName);
  await page.getByRole('button', { name: 'Create token' }).click();
  const field = page.getByRole('textbox', { name: 'New API token' });
  await expect(field).toHaveValue(/\S{16,}/);
  const token = await field.inputValue();
  const row = page.getByRole('table').getByRole('row').filter({ hasText: tokenName });
  await expect(row).toBeVisible();
  await expect(row.getByRole('button', { name: /^Revoke/ })).toBeVisible();

  const me = await request.get('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(200);
  const body = await me.json();
  expect(body.user.email).toBe(names.owner);
  expect(body.teams[0].role).toBe('owner');
  expect(body.teams[0].handle ?? names.teamHandle).toBe(names.teamHandle);

  const anonymous = await request.get('/api/v1/me');
  expect(anonymous.status()).toBe(401);

  await settled(page);
  await row.getByRole('button', { name: /^Revoke/ }).click();
  await expect(page.getByRole('table').getByRole('row').filter({ hasText: tokenName })).toHaveCount(0);
  const revoked = await request.get('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(revoked.status()).toBe(401);
});
