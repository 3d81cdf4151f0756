// ECR credentials, against the ECR stand-in that global-setup.ts started (moto as ECR and
// STS, checking SigV4, and a registry that takes only the tokens moto mints): an owner stores
// an AWS access key once, verifies it (Berth mints a token, logs in and resolves the image),
// sees the last token's expiry; a wrong secret access key is refused at the AWS sign-in step
// with AWS's own words; then an image deploy with no credentials typed pulls with a freshly
// minted token and the release serves. No page ever holds the secret key or a token.
// Runs with JavaScript on ("hydrate") and off ("ssr").
import { appTab, everything, expect, nav, PASSWORD, settled, signUp, test, testEcr, uniqueNames, usesJs } from './fixtures';
import type { Page } from '@playwright/test';

const GOOD = 'ecr-prod';
const WRONG = 'ecr-wrong-key';
const GREETING = "Hello from Berth's test image";

function verifyReport(page: Page) {
  return page.getByRole('region', { name: 'Verify' }).getByRole('status');
}

/** Fills the new-credential form as an ECR access key and saves it. */
async function createEcrCredential(page: Page, c: { name: string; registry: string; keyId: string; secret: string }) {
  await page.getByLabel('Name', { exact: true }).fill(c.name);
  await page.getByRole('radio', { name: 'AWS ECR access key' }).check();
  // Only the chosen kind's fields show (CSS, so also without JavaScript).
  await expect(page.getByLabel('Username', { exact: true })).toBeHidden();
  await page.getByLabel('Registry', { exact: true }).fill(c.registry);
  await page.getByLabel('AWS access key id').fill(c.keyId);
  await page.getByLabel('Secret access key', { exact: true }).fill(c.secret);
  await page.getByLabel('Region', { exact: true }).fill('us-east-1');
  await page.getByRole('button', { name: 'Save credential' }).click();
}

async function newCredentialPage(page: Page, team: string) {
  await nav(page).getByRole('link', { name: 'Credentials', exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/teams/${team}/credentials$`));
  await settled(page);
  await page.getByRole('link', { name: 'New credential', exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/teams/${team}/credentials/new$`));
  await settled(page);
}

test('an owner stores an AWS key once; verification and an image deploy mint fresh ECR tokens, nothing pasted', async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(240_000);
  const ecr = testEcr();
  const names = uniqueNames(testInfo, 'ecr');
  const team = names.teamHandle;
  const noSecrets = async () => {
    const content = await everything(page);
    expect(content).not.toContain(ecr.secretAccessKey);
    expect(content).not.toContain(ecr.tokenPassword);
  };

  await test.step('the owner signs up; a key without its region is refused at the Region field', async () => {
    await signUp(page, { email: names.owner, password: PASSWORD, teamName: names.teamName, teamHandle: team });
    await newCredentialPage(page, team);
    await page.getByLabel('Name', { exact: true }).fill(GOOD);
    await page.getByRole('radio', { name: 'AWS ECR access key' }).check();
    await page.getByLabel('Registry', { exact: true }).fill(ecr.host);
    await page.getByLabel('AWS access key id').fill(ecr.accessKeyId);
    await page.getByLabel('Secret access key', { exact: true }).fill(ecr.secretAccessKey);
    await page.getByRole('button', { name: 'Save credential' }).click();
    await settled(page);
    // With or without JavaScript the ECR fields stay in view, the error at its field.
    await expect(page.getByRole('radio', { name: 'AWS ECR access key' })).toBeChecked();
    await expect(page.getByLabel('Region', { exact: true })).toBeVisible();
    await expect(page.getByText('Enter the AWS region of the registry, e.g. us-east-1.')).toBeVisible();
    // The page that comes back from a plain post never echoes the secret (with JavaScript
    // the field simply keeps what was typed).
    if (!usesJs(testInfo)) await noSecrets();
  });

  await test.step('the owner stores an ECR access key', async () => {
    await newCredentialPage(page, team);
    await createEcrCredential(page, { name: GOOD, registry: ecr.host, keyId: ecr.accessKeyId, secret: ecr.secretAccessKey });
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/credentials/${GOOD}$`));
    await settled(page);
    await expect(page.getByRole('heading', { level: 1, name: GOOD })).toBeVisible();
    await expect(page.getByText(ecr.accessKeyId, { exact: true })).toBeVisible();
    await expect(page.getByText('none minted yet: verify to get one')).toBeVisible();
    await noSecrets();
  });

  await test.step('verifying mints a token, logs in and resolves the image', async () => {
    const section = page.getByRole('region', { name: 'Verify' });
    await section.getByLabel('Image (optional)').fill(ecr.image);
    await section.getByRole('button', { name: 'Verify', exact: true }).click();
    await expect(verifyReport(page)).toContainText('Verified');
    await expect(verifyReport(page)).toContainText('Got a token from AWS, logged in and resolved the image.');
    await expect(verifyReport(page)).toContainText(ecr.digest);
    // moto's tokens say they expire on 2015-01-01.
    await expect(page.getByText(/minted .* expires .*2015-01-01/)).toBeVisible();
    await noSecrets();
  });

  await test.step('a wrong secret access key fails at the AWS sign-in step, in AWS\'s words', async () => {
    await newCredentialPage(page, team);
    await createEcrCredential(page, { name: WRONG, registry: ecr.host, keyId: ecr.accessKeyId, secret: 'x'.repeat(40) });
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/credentials/${WRONG}$`));
    await settled(page);
    await page.getByRole('region', { name: 'Verify' }).getByRole('button', { name: 'Verify', exact: true }).click();
    await expect(verifyReport(page)).toContainText('Verification failed at the AWS sign-in step');
    await expect(verifyReport(page)).toContainText('SignatureDoesNotMatch');
    await expect(page.getByText(/^SignatureDoesNotMatch: /)).toBeVisible();
  });

  await test.step('an image deploy with no credentials typed pulls with a fresh token and serves', async () => {
    await nav(page).getByRole('link', { name: 'Apps', exact: true }).click();
    await settled(page);
    await page.getByRole('link', { name: 'New app', exact: true }).click();
    await settled(page);
    await page.getByLabel('Handle', { exact: true }).fill('api');
    await page.getByRole('radio', { name: 'Direct Docker Image' }).check();
    await page.getByRole('button', { name: 'Create app' }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/apps/api$`));
    await settled(page);
    await appTab(page, 'Deploy');
    const form = page.getByRole('region', { name: 'Deploy an image' });
    await form.getByLabel('Image', { exact: true }).fill(ecr.image);
    await form.getByRole('radio', { name: 'A team credential' }).check();
    await form.getByLabel('Team credential', { exact: true }).selectOption(GOOD);
    await form.getByRole('button', { name: 'Verify and deploy' }).click();
    await expect(page).toHaveURL(new RegExp(`/teams/${team}/operations/\\d+$`), { timeout: 30_000 });
    await settled(page);
    const heading = page.getByRole('heading', { level: 1 });
    await expect(heading).toHaveAccessibleName(/succeeded$/, { timeout: 120_000 });
    await expect(page.getByText(ecr.digest, { exact: true })).toBeVisible();
    await page.getByRole('link', { name: 'api', exact: true }).first().click();
    await settled(page);
    const link = page.getByRole('region', { name: 'Current release' }).getByRole('link', { name: /^http:\/\/127\.0\.0\.1:\d+\/$/ });
    const url = (await link.getAttribute('href'))!;
    await expect(async () => {
      const res = await request.get(url, { timeout: 5_000 });
      expect(res.status()).toBe(200);
      expect(await res.text()).toContain(GREETING);
    }).toPass({ timeout: 30_000 });
    await noSecrets();
  });
});
