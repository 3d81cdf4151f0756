// An owner signs up, invites a viewer, and the viewer joins through the invitation link; the
// viewer's limits show on the pages, signing out and back in works, a wrong password is
// reported at the password field; the owner changes the member's role and cannot remove
// the team's last owner. Runs with JavaScript on ("hydrate") and off ("ssr").
import {
  expect,
  goVia,
  MEMBER_PASSWORD,
  nav,
  newPerson,
  open,
  PASSWORD,
  settled,
  SIGNIN_AFTER_ERROR_URL,
  SIGNIN_URL,
  signIn,
  signUp,
  test,
  uniqueNames,
  usesJs,
} from './fixtures';
import type { Page } from '@playwright/test';

function memberRow(page: Page, email: string) {
  return page.getByRole('table').getByRole('row').filter({ hasText: email });
}

/** The role badge in a member's row (second column). */
function roleCell(page: Page, email: string) {
  return memberRow(page, email).getByRole('cell').nth(1);
}

test('an owner invites a viewer, who joins, meets the limits of the role, and signs out and in', async ({
  page,
  newPerson,
}, testInfo) => {
  test.setTimeout(90_000);
  const names = uniqueNames(testInfo, 'team');
  const teamUrl = new RegExp(`/teams/${names.teamHandle}$`);
  const membersUrl = new RegExp(`/teams/${names.teamHandle}/members$`);

  await test.step('the owner signs up and creates the team', async () => {
    await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: names.teamHandle });
    await expect(page.getByRole('heading', { name: 'Your role: owner' })).toBeVisible();
    await expect(nav(page).getByText(names.owner)).toBeVisible();
  });

  let invitation = '';
  await test.step('the owner adds a new e-mail as viewer and gets an invitation link', async () => {
    await goVia(page, 'Members', membersUrl);
    await expect(page.getByRole('heading', { level: 1, name: 'Members' })).toBeVisible();
    await expect(roleCell(page, names.owner)).toHaveText('owner');

    const add = page.getByRole('region', { name: 'Add member' });
    await add.getByLabel('E-mail').fill(names.member);
    await add.getByLabel('Role', { exact: true }).selectOption('viewer');
    await add.getByRole('button', { name: 'Add member' }).click();

    const link = page.getByRole('textbox', { name: 'Invitation link' });
    await expect(link).toHaveValue(/^http:\/\/127\.0\.0\.1:\d+\/invite\/inv_\S+$/);
    await expect(link).toHaveAttribute('readonly', '');
    invitation = await link.inputValue();
    expect(new URL(invitation).origin).toBe(new URL(page.url()).origin);
    // A copy button once JavaScript runs (none that does nothing without it).
    const copy = page.getByRole('button', { name: 'Copy the invitation link' });
    if (usesJs(testInfo)) {
      await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
      await copy.click();
      await expect(copy).toHaveText('Copied');
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(invitation);
    } else {
      await expect(copy).toBeHidden();
    }

    await expect(roleCell(page, names.member)).toHaveText('viewer');
    await expect(memberRow(page, names.member)).toContainText('invited');
  });

  const member = await newPerson();
  await test.step('the invited person opens the link in another browser and sets a password', async () => {
    await member.goto(invitation);
    await settled(member, testInfo);
    await expect(member.getByRole('heading', { level: 1, name: 'Join your team' })).toBeVisible();
    await expect(member.getByText(names.member)).toBeVisible();
    // The page says which role the person gets.
    await expect(member.getByText(/to join as a viewer/)).toBeVisible();
    await member.getByLabel('Password').fill(MEMBER_PASSWORD);
    await member.getByRole('button', { name: 'Join the team' }).click();
    await expect(member).toHaveURL(teamUrl);
    await settled(member, testInfo);
    await expect(member.getByRole('heading', { level: 1, name: names.teamName })).toBeVisible();
    await expect(member.getByRole('heading', { name: 'Your role: viewer' })).toBeVisible();
    await expect(nav(member).getByText(names.member)).toBeVisible();
  });

  await test.step('the viewer sees the limits of the role on the members page', async () => {
    await goVia(member, 'Members', membersUrl);
    await expect(
      member.getByText('Only owners can add or remove members and change roles. Your role is viewer.'),
    ).toBeVisible();
    await expect(roleCell(member, names.member)).toHaveText('viewer');
    await expect(roleCell(member, names.owner)).toHaveText('owner');
    await expect(member.getByRole('region', { name: 'Add member' })).toHaveCount(0);
    await expect(member.getByRole('button', { name: /Add member/ })).toHaveCount(0);
    await expect(member.getByRole('link', { name: 'Add member' })).toHaveCount(0);
    await expect(member.getByText('Remove…')).toHaveCount(0);
    await expect(member.getByRole('button', { name: /remove/i })).toHaveCount(0);
    await expect(member.getByRole('button', { name: /^Change role/ })).toHaveCount(0);
    await expect(member.getByRole('combobox')).toHaveCount(0);
    await expect(member.getByRole('textbox')).toHaveCount(0);
  });

  await test.step('the invitation link cannot be used twice', async () => {
    const stranger = await newPerson();
    await stranger.goto(invitation);
    await expect(
      stranger.getByRole('heading', { level: 1, name: 'This invitation is no longer valid' }),
    ).toBeVisible();
    await expect(stranger.getByLabel('Password')).toHaveCount(0);
  });

  await test.step('the viewer signs out and lands on the sign-in page', async () => {
    await goVia(member, 'Overview', teamUrl);
    await expect(member.getByRole('heading', { name: 'Your role: viewer' })).toBeVisible();
    await nav(member).getByRole('button', { name: 'Sign out' }).click();
    await expect(member).toHaveURL(SIGNIN_URL);
    await expect(member.getByRole('heading', { level: 1, name: 'Sign in' })).toBeVisible();
    await settled(member, testInfo);
    // Signed out for real: a team page sends the person back to sign in.
    await member.goto(`/teams/${names.teamHandle}`);
    await expect(member).toHaveURL(SIGNIN_URL);
  });

  await test.step('a wrong password is reported at the password field', async () => {
    await open(member, '/signin');
    await member.getByLabel('E-mail').fill(names.member);
    await member.getByLabel('Password').fill('not the password at all');
    await member.getByRole('button', { name: 'Sign in' }).click();
    const password = member.getByLabel('Password');
    await expect(password).toHaveAccessibleDescription('That e-mail and password do not match an account.');
    await expect(password).toHaveAttribute('aria-invalid', 'true');
    await expect(member.getByText('That e-mail and password do not match an account.')).toBeVisible();
    // The sign-in form is no island: with or without JavaScript it posts, and the server
    // redirects back with the error.
    await expect(member).toHaveURL(SIGNIN_AFTER_ERROR_URL);
  });

  await test.step("the viewer signs in again with the right password", async () => {
    await signIn(member, names.member, MEMBER_PASSWORD);
    await expect(member).toHaveURL(teamUrl);
    await expect(member.getByRole('heading', { name: 'Your role: viewer' })).toBeVisible();
  });

  await test.step('the owner makes the viewer a deployer, and the change shows', async () => {
    await open(page, `/teams/${names.teamHandle}/members`);
    // The invitation link was shown once: it is not on the page any more.
    await expect(page.getByRole('textbox', { name: 'Invitation link' })).toHaveCount(0);
    await expect(memberRow(page, names.member)).not.toContainText('invited');
    await page.getByLabel(`Role for ${names.member}`).selectOption('deployer');
    await page.getByRole('button', { name: `Change role for ${names.member}` }).click();
    await expect(roleCell(page, names.member)).toHaveText('deployer');
    await expect(page.getByLabel(`Role for ${names.member}`)).toHaveValue('deployer');
    await settled(page, testInfo);
    // It stays after a reload, and the member sees it too.
    await page.reload();
    await expect(roleCell(page, names.member)).toHaveText('deployer');

    await open(member, `/teams/${names.teamHandle}`);
    await expect(member.getByRole('heading', { name: 'Your role: deployer' })).toBeVisible();
    await goVia(member, 'Members', membersUrl);
    await expect(
      member.getByText('Only owners can add or remove members and change roles. Your role is deployer.'),
    ).toBeVisible();
    await expect(member.getByText('Remove…')).toHaveCount(0);
    await expect(member.getByRole('button', { name: /remove/i })).toHaveCount(0);
  });

  await test.step('the owner cannot remove themselves as the last owner', async () => {
    await open(page, `/teams/${names.teamHandle}/members`);
    // Removing is asked twice: the first click only opens the question.
    await memberRow(page, names.owner).getByText('Remove…').click();
    await expect(memberRow(page, names.owner)).toContainText('They lose access at once');
    await page.getByRole('button', { name: `Yes, remove ${names.owner}` }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'A team needs at least one owner' })).toBeVisible();
    await expect(page.getByRole('alert')).toContainText(
      'A team needs at least one owner: make someone else an owner first.',
    );
    await settled(page, testInfo);
    // Refused again: still one message, not two stacked.
    await memberRow(page, names.owner).getByText('Remove…').click();
    await page.getByRole('button', { name: `Yes, remove ${names.owner}` }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'A team needs at least one owner' })).toBeVisible();
    await settled(page, testInfo);
    await expect(page.getByRole('alert')).toHaveCount(1);
    await expect(roleCell(page, names.owner)).toHaveText('owner');
    await expect(memberRow(page, names.owner)).toBeVisible();
  });

  await test.step('nor demote themselves as the last owner', async () => {
    await open(page, `/teams/${names.teamHandle}/members`);
    await page.getByLabel(`Role for ${names.owner}`).selectOption('viewer');
    await page.getByRole('button', { name: `Change role for ${names.owner}` }).click();
    await expect(page.getByRole('alert')).toContainText('A team needs at least one owner');
    await page.reload();
    await settled(page, testInfo);
    await expect(roleCell(page, names.owner)).toHaveText('owner');
  });
});
