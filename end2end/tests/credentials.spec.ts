// Registry credentials, against the real registry that global-setup.ts started: an owner
// creates one, verifies it against the pushed image and sees its exact digest, while no page
// ever holds the password; a wrong password fails verification as wrong_credentials; a
// registry typed as a URL is refused at its field; the owner fixes the wrong one by entering
// a new secret, and deletes it. A deployer sees the list and may verify but not edit or
// delete; made a viewer, the same member may not verify either; the audit trail shows what
// happened. Runs with JavaScript on ("hydrate") and off ("ssr").
import {
  everything,
  expect,
  goVia,
  MEMBER_PASSWORD,
  nav,
  open,
  PASSWORD,
  settled,
  signUp,
  test,
  testRegistry,
  uniqueNames,
} from './fixtures';
import type { Page } from '@playwright/test';

const GOOD = 'e2e-registry';
const WRONG = 'e2e-wrong-password';

function credentialRow(page: Page, name: string) {
  return page.getByRole('table').getByRole('row').filter({ has: page.getByRole('link', { name, exact: true }) });
}

/** The outcome of the last verification (the status box in the Verify section). */
function verifyReport(page: Page) {
  return page.getByRole('region', { name: 'Verify' }).getByRole('status');
}

/** Fills the new-credential form and saves it. */
async function createCredential(
  page: Page,
  c: { name: string; registry: string; username: string; secret: string; note?: string },
) {
  await page.getByLabel('Name', { exact: true }).fill(c.name);
  await page.getByLabel('Registry', { exact: true }).fill(c.registry);
  await page.getByLabel('Username', { exact: true }).fill(c.username);
  await page.getByLabel('Password or token', { exact: true }).fill(c.secret);
  await page.getByLabel('Note (optional)').fill(c.note ?? '');
  await page.getByRole('button', { name: 'Save credential' }).click();
}

/** Verifies the credential on its page against `image`. */
async function verify(page: Page, image: string) {
  const section = page.getByRole('region', { name: 'Verify' });
  await section.getByLabel('Image (optional)').fill(image);
  await section.getByRole('button', { name: 'Verify', exact: true }).click();
}

test('an owner stores, verifies, fixes and deletes registry credentials; a deployer may only verify, a viewer only look', async ({
  page,
  newPerson,
}, testInfo) => {
  test.setTimeout(120_000);
  const registry = testRegistry();
  const names = uniqueNames(testInfo, 'cred');
  const base = `/teams/${names.teamHandle}/credentials`;
  const listUrl = new RegExp(`${base}$`);
  const goodUrl = new RegExp(`${base}/${GOOD}$`);
  const wrongUrl = new RegExp(`${base}/${WRONG}$`);
  // Without JavaScript, a form posted on a page comes back to it, once with a bare "?"
  // (Leptos redirects to the Referer after removing its own error parameters).
  const stillAt = (url: RegExp) => new RegExp(url.source.replace(/\$$/, '\\??$'));
  const wrongPassword = `not-${registry.password}`;

  await test.step('the owner signs up and finds no credentials yet', async () => {
    await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: names.teamHandle });
    await goVia(page, 'Credentials', listUrl);
    await expect(page.getByRole('heading', { level: 1, name: 'Registry credentials' })).toBeVisible();
    await expect(nav(page).getByRole('link', { name: 'Credentials', exact: true })).toHaveAttribute('aria-current', 'page');
    await expect(page.getByText(/^No credentials yet\./)).toBeVisible();
    await expect(page.getByRole('table')).toHaveCount(0);
  });

  await test.step('a registry typed as a URL is refused at its field', async () => {
    await page.getByRole('link', { name: 'New credential' }).click();
    await expect(page).toHaveURL(new RegExp(`${base}/new$`));
    await settled(page, testInfo);
    await expect(page.getByRole('heading', { level: 1, name: 'New registry credential' })).toBeVisible();
    await createCredential(page, { name: GOOD, registry: 'https://x/y', username: registry.user, secret: registry.password });
    const field = page.getByLabel('Registry', { exact: true });
    await expect(field).toHaveAttribute('aria-invalid', 'true');
    await expect(field).toHaveAccessibleDescription(/Leave out "https:\/\/"/);
    await expect(page.getByText('Leave out "https://": enter just the host, e.g. x.')).toBeVisible();
    await expect(page).toHaveURL(new RegExp(`${base}/new(\\?.*)?$`));
    await settled(page, testInfo);
    // Nothing was stored.
    await open(page, base);
    await expect(page.getByText(/^No credentials yet\./)).toBeVisible();
  });

  await test.step('the owner stores the registry login and lands on its page', async () => {
    await open(page, `${base}/new`);
    await createCredential(page, {
      name: GOOD,
      registry: registry.host,
      username: registry.user,
      secret: registry.password,
      note: 'pushed by the test registry',
    });
    await expect(page).toHaveURL(goodUrl);
    await settled(page, testInfo);
    await expect(page.getByRole('heading', { level: 1, name: GOOD })).toBeVisible();
    await expect(page.getByText(registry.host, { exact: true })).toBeVisible();
    await expect(page.getByText('write-only, version 1')).toBeVisible();
    await expect(page.getByText('pushed by the test registry', { exact: true })).toBeVisible();
    const history = page.getByRole('region', { name: 'History' });
    await expect(history.getByRole('cell', { name: 'credential.create' })).toBeVisible();
    expect(await everything(page)).not.toContain(registry.password);
  });

  await test.step('verifying against the pushed image shows its exact digest', async () => {
    await verify(page, registry.image);
    const report = verifyReport(page);
    await expect(report).toContainText('Verified');
    await expect(report).not.toContainText('Verification failed');
    await expect(report.getByText(registry.digest, { exact: true })).toBeVisible();
    await expect(report).toContainText(registry.image);
    await expect(report).toContainText('Platforms');
    await expect(report).toContainText('linux/');
    await expect(report).toContainText(/Size\s*\d+(\.\d)? (bytes|KiB|MiB)/);
    await expect(page).toHaveURL(stillAt(goodUrl));
    await settled(page, testInfo);
    await expect(page.getByRole('region', { name: 'History' }).getByRole('cell', { name: 'credential.verify' })).toBeVisible();
    expect(await everything(page)).not.toContain(registry.password);
  });

  await test.step('the list shows the credential, verified, and links to it', async () => {
    await open(page, base);
    const row = credentialRow(page, GOOD);
    await expect(row).toContainText(registry.host);
    await expect(row).toContainText(registry.user);
    await expect(row).toContainText('✓ ok');
    for (const column of ['Name', 'Registry', 'Kind', 'Username or key', 'Last verified', 'Last used', 'Expires']) {
      await expect(page.getByRole('columnheader', { name: column, exact: true })).toBeVisible();
    }
    expect(await everything(page)).not.toContain(registry.password);
    await row.getByRole('link', { name: GOOD, exact: true }).click();
    await expect(page).toHaveURL(goodUrl);
    await settled(page, testInfo);
    await expect(page.getByRole('heading', { level: 1, name: GOOD })).toBeVisible();
    // The outcome was shown once; the credential keeps its last verification.
    await expect(verifyReport(page)).toHaveCount(0);
  });

  await test.step('a credential with a wrong password fails verification as wrong_credentials', async () => {
    await open(page, base);
    await page.getByRole('link', { name: 'New credential' }).click();
    await expect(page).toHaveURL(new RegExp(`${base}/new$`));
    await settled(page, testInfo);
    await createCredential(page, { name: WRONG, registry: registry.host, username: registry.user, secret: wrongPassword });
    await expect(page).toHaveURL(wrongUrl);
    await settled(page, testInfo);
    await verify(page, registry.image);
    const report = verifyReport(page);
    await expect(report).toContainText('Verification failed');
    await expect(report.getByText('wrong credentials', { exact: true })).toBeVisible();
    await expect(report).toContainText('The registry rejected the username or password');
    await expect(report).not.toContainText(registry.digest);
    await settled(page, testInfo);
    const content = await everything(page);
    expect(content).not.toContain(wrongPassword);
    expect(content).not.toContain(registry.password);
  });

  await test.step('the owner enters the right password, keeping the rest, and it verifies', async () => {
    const edit = page.getByRole('region', { name: 'Edit' });
    await expect(edit.getByLabel('Name', { exact: true })).toHaveValue(WRONG);
    await expect(edit.getByLabel('Registry', { exact: true })).toHaveValue(registry.host);
    await expect(edit.getByLabel('New password or token')).toHaveValue('');
    await edit.getByLabel('New password or token').fill(registry.password);
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await expect(page.getByText('write-only, version 2')).toBeVisible();
    await expect(page).toHaveURL(stillAt(wrongUrl));
    await settled(page, testInfo);
    // A new secret starts unverified: the old failure's report is gone, "Last verified" says
    // never, and the field is empty again (the form posted and the page came back fresh).
    await expect(verifyReport(page)).toHaveCount(0);
    await expect(page.getByRole('definition').filter({ hasText: /^never/ })).toHaveCount(1);
    await expect(page.getByRole('region', { name: 'Edit' }).getByLabel('New password or token')).toHaveValue('');
    await verify(page, registry.image);
    await expect(verifyReport(page)).toContainText('Verified');
    await expect(verifyReport(page).getByText(registry.digest, { exact: true })).toBeVisible();
    await settled(page, testInfo);
    await expect(page.getByRole('region', { name: 'History' }).getByRole('cell', { name: 'credential.update' })).toBeVisible();
    expect(await page.content()).not.toContain(registry.password);
    // With JavaScript, the field keeps what was typed after saving (the form is not reset),
    // so the whole page is checked once reloaded.
    await page.reload();
    await settled(page, testInfo);
    await expect(page.getByLabel('New password or token')).toHaveValue('');
    expect(await everything(page)).not.toContain(registry.password);
  });

  await test.step('the owner deletes it after typing its name', async () => {
    const del = page.getByRole('region', { name: 'Delete' });
    await del.getByLabel('Type the name to confirm').fill('something else');
    await del.getByRole('button', { name: 'Delete credential' }).click();
    await expect(page.getByLabel('Type the name to confirm')).toHaveAccessibleDescription(`Type ${WRONG} to confirm that it should be deleted.`);
    await settled(page, testInfo);
    await page.getByLabel('Type the name to confirm').fill(WRONG);
    await page.getByRole('button', { name: 'Delete credential' }).click();
    await expect(page).toHaveURL(listUrl);
    await settled(page, testInfo);
    await expect(credentialRow(page, GOOD)).toBeVisible();
    await expect(page.getByRole('link', { name: WRONG, exact: true })).toHaveCount(0);
  });

  let invitation = '';
  await test.step('the owner adds a deployer', async () => {
    await goVia(page, 'Members', new RegExp(`/teams/${names.teamHandle}/members$`));
    const add = page.getByRole('region', { name: 'Add member' });
    await add.getByLabel('E-mail').fill(names.member);
    await add.getByLabel('Role', { exact: true }).selectOption('deployer');
    await add.getByRole('button', { name: 'Add member' }).click();
    const link = page.getByRole('textbox', { name: 'Invitation link' });
    await expect(link).toHaveValue(/\/invite\/inv_\S+$/);
    invitation = await link.inputValue();
  });

  const deployer = await newPerson();
  await test.step('the deployer joins and sees the list', async () => {
    await deployer.goto(invitation);
    await settled(deployer, testInfo);
    await deployer.getByLabel('Password').fill(MEMBER_PASSWORD);
    await deployer.getByRole('button', { name: 'Join the team' }).click();
    await expect(deployer).toHaveURL(new RegExp(`/teams/${names.teamHandle}$`));
    await settled(deployer, testInfo);
    await expect(deployer.getByRole('heading', { name: 'Your role: deployer' })).toBeVisible();
    await goVia(deployer, 'Credentials', listUrl);
    await expect(deployer.getByRole('heading', { level: 1, name: 'Registry credentials' })).toBeVisible();
    await expect(credentialRow(deployer, GOOD)).toContainText(registry.host);
    await expect(deployer.getByRole('link', { name: 'New credential' })).toHaveCount(0);
  });

  await test.step('the deployer may verify, but not edit or delete', async () => {
    await credentialRow(deployer, GOOD).getByRole('link', { name: GOOD, exact: true }).click();
    await expect(deployer).toHaveURL(goodUrl);
    await settled(deployer, testInfo);
    await expect(deployer.getByRole('heading', { level: 1, name: GOOD })).toBeVisible();
    await expect(deployer.getByRole('region', { name: 'Edit' })).toHaveCount(0);
    await expect(deployer.getByRole('region', { name: 'Delete' })).toHaveCount(0);
    await expect(deployer.getByRole('button', { name: 'Save changes' })).toHaveCount(0);
    await expect(deployer.getByRole('button', { name: 'Delete credential' })).toHaveCount(0);
    await expect(deployer.getByLabel('New password or token')).toHaveCount(0);
    await verify(deployer, registry.image);
    await expect(verifyReport(deployer)).toContainText('Verified');
    await expect(verifyReport(deployer).getByText(registry.digest, { exact: true })).toBeVisible();
    await settled(deployer, testInfo);
    expect(await everything(deployer)).not.toContain(registry.password);
    await open(deployer, `${base}/new`);
    await expect(deployer.getByText('Only owners can add credentials. Your role is deployer.')).toBeVisible();
    await expect(deployer.getByRole('button', { name: 'Save credential' })).toHaveCount(0);
  });

  await test.step('made a viewer, the member sees the credential but may not verify it', async () => {
    await open(page, `/teams/${names.teamHandle}/members`);
    await page.getByLabel(`Role for ${names.member}`).selectOption('viewer');
    await page.getByRole('button', { name: `Change role for ${names.member}` }).click();
    await expect(page.getByLabel(`Role for ${names.member}`)).toHaveValue('viewer');
    await settled(page, testInfo);

    await open(deployer, `${base}/${GOOD}`);
    await expect(deployer.getByRole('heading', { level: 1, name: GOOD })).toBeVisible();
    await expect(deployer.getByText(registry.host, { exact: true })).toBeVisible();
    await expect(deployer.getByText('Deployers and owners can verify credentials. Your role is viewer.')).toBeVisible();
    await expect(deployer.getByRole('button', { name: 'Verify', exact: true })).toHaveCount(0);
    await expect(deployer.getByLabel('Image (optional)')).toHaveCount(0);
    await expect(deployer.getByRole('region', { name: 'Edit' })).toHaveCount(0);
    await expect(deployer.getByRole('region', { name: 'Delete' })).toHaveCount(0);
    await expect(deployer.getByRole('region', { name: 'History' }).getByRole('cell', { name: 'credential.verify' }).first()).toBeVisible();
  });

  await test.step('the audit trail shows the creations and verifications', async () => {
    await goVia(page, 'Audit', new RegExp(`/teams/${names.teamHandle}/audit$`));
    await expect(page.getByRole('heading', { level: 1, name: 'Audit trail' })).toBeVisible();
    const events = page.getByRole('table').getByRole('row');
    const row = (action: string, subject: string) =>
      events.filter({ has: page.getByRole('cell', { name: action, exact: true }) }).filter({ hasText: subject });
    await expect(row('credential.create', GOOD)).toHaveCount(1);
    await expect(row('credential.create', WRONG)).toHaveCount(1);
    await expect(row('credential.verify', GOOD)).toHaveCount(2);
    await expect(row('credential.verify', GOOD).filter({ hasText: names.member })).toHaveCount(1);
    await expect(row('credential.verify', WRONG).filter({ hasText: '✗ failed' })).toHaveCount(1);
    await expect(row('credential.verify', WRONG).filter({ hasText: '✓ ok' })).toHaveCount(1);
    await expect(row('credential.update', WRONG)).toHaveCount(1);
    await expect(row('credential.delete', WRONG)).toHaveCount(1);
    expect(await everything(page)).not.toContain(registry.password);
  });
});
