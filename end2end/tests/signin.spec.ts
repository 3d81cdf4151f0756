// Sign-in throttling: after five failed sign-ins for an account, further tries (even with the
// right password) are refused with a message saying how long to wait.
import { expect, nav, open, PASSWORD, SIGNIN_AFTER_ERROR_URL, SIGNIN_URL, signUp, test, uniqueNames } from './fixtures';

test('repeated wrong passwords lock the account for a while', async ({ page }, testInfo) => {
  test.setTimeout(60_000);
  const names = uniqueNames(testInfo, 'lock');
  await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: names.teamHandle });
  await nav(page).getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(SIGNIN_URL);

  const attempt = async (password: string) => {
    await open(page, '/signin');
    await page.getByLabel('E-mail').fill(names.owner);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  for (let i = 1; i <= 5; i++) {
    await attempt(`wrong password ${i}`);
    await expect(page.getByLabel('Password')).toHaveAccessibleDescription(
      'That e-mail and password do not match an account.',
    );
  }
  await attempt(PASSWORD);
  await expect(page.getByRole('alert')).toHaveText(/^Too many failed sign-ins\. Wait \d+ minutes? and try again\.$/);
  await expect(page).toHaveURL(SIGNIN_AFTER_ERROR_URL);
  await expect(page.getByRole('navigation', { name: 'Main' })).toHaveCount(0);
});

test('sign-up names every wrong field at once and keeps what was typed, never the password', async ({ page }, testInfo) => {
  const names = uniqueNames(testInfo, 'fields');
  await open(page, '/signup');
  // The server's checks, not the browser's: they are what every client gets.
  await page.locator('form').evaluate((form: HTMLFormElement) => (form.noValidate = true));
  await page.getByLabel('E-mail').fill('nobody');
  await page.getByLabel('Password').fill('short');
  await page.getByLabel('Team name').fill(names.teamName);
  await page.getByLabel('Team handle').fill('Not A Handle');
  await page.getByRole('button', { name: 'Create account' }).click();
  const email = page.getByLabel('E-mail');
  const password = page.getByLabel('Password');
  const handle = page.getByLabel('Team handle');
  for (const field of [email, password, handle]) await expect(field).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Team name')).toHaveAttribute('aria-invalid', 'false');
  await expect(handle).toHaveAccessibleDescription(/not-a-handle/);
  await expect(email).toHaveValue('nobody');
  await expect(handle).toHaveValue('Not A Handle');
  await expect(page.getByLabel('Team name')).toHaveValue(names.teamName);
  // Without JavaScript the page came back from the server: the password was not sent back.
  expect(await page.content()).not.toContain('value="short"');
  await expect(page).toHaveURL(/\/signup$/);

  // Fixed, with the handle left empty: it is made from the team's name.
  await email.fill(names.owner);
  await password.fill(PASSWORD);
  await handle.fill('');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/signin\?signed_up=1$/);
  await page.getByLabel('E-mail').fill(names.owner);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const derived = names.teamName.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40).replace(/-+$/, '');
  await expect(page).toHaveURL(new RegExp(`/teams/${derived}$`));
});

test('the favicon is served, not a 404', async ({ request }) => {
  for (const path of ['/favicon.ico', '/favicon.svg']) {
    const icon = await request.get(path);
    expect(icon.status(), path).toBe(200);
    expect(icon.headers()['content-type'], path).toContain('image/svg+xml');
  }
});
