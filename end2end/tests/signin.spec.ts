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
