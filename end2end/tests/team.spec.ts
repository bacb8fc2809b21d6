// A team's first day, on a server left at its defaults (registration by
// invitation): the first account becomes admin, an invite link brings two
// more people in, a private room holds two of the three, the third cannot
// reach it by its address, and a ban ends the banned person's page at once.
import { test, expect, Browser, Page } from '@playwright/test';
import { Server } from './server';
import { hydrated, roomItem, say, formReady } from './helpers';

let server: Server;
const pageErrors: Error[] = [];

// Three or four people register (argon2 each) on a machine of two cores.
test.describe.configure({ timeout: 120_000 });

test.beforeEach(async () => {
  // The default mode, not the tests' usual open registration.
  server = new Server({ CAUSERIE_REGISTRATION: 'invite' });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function fresh(browser: Browser): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => pageErrors.push(e));
  return page;
}

/** Fills the registration form on the page shown, and lands in the chat. */
async function registerHere(page: Page, name: string) {
  await formReady(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(/^Password/).fill(`password-of-${name}`);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.waitForURL(server.url + '/');
  await hydrated(page);
  await expect(page.getByTestId('status')).toHaveText('Connected');
}

test("a team's first day", async ({ browser }) => {
  // The first visit to the empty server offers its first, admin, account.
  const ada = await fresh(browser);
  await ada.goto(server.url + '/register');
  await expect(ada.getByTestId('registration-notice')).toHaveText(/will be its admin/);
  await registerHere(ada, 'ada');

  // Past the first account, registration needs an invitation.
  const stranger = await fresh(browser);
  await stranger.goto(server.url + '/register');
  await expect(stranger.getByTestId('registration-notice')).toHaveText(/by invitation/);
  await expect(stranger.getByRole('button', { name: 'Register' })).toHaveCount(0);

  // ada makes a link for two people.
  await ada.goto(server.url + '/admin');
  // The admin page is no chat page: live once its scripts have loaded.
  await ada.waitForLoadState('networkidle');
  // On a busy machine the page may not run yet: the form then posts without
  // script and the page comes back without the link. Again once it runs.
  await expect(async () => {
    await ada.locator('#invite-uses').fill('2');
    await ada.getByRole('button', { name: 'Make a link' }).click();
    await expect(ada.getByTestId('new-invite')).toBeVisible({ timeout: 5000 });
  }).toPass({ timeout: 60000 });
  const link = (await ada.getByTestId('new-invite').innerText()).trim();
  expect(link).toMatch(/\/invite\/\S+$/);
  const path = new URL(link).pathname;

  // ben and cy register through it; a third use says it is used up.
  const ben = await fresh(browser);
  await ben.goto(server.url + path);
  await expect(ben.getByTestId('registration-notice')).toHaveText(/You are invited/);
  await registerHere(ben, 'ben');
  const cy = await fresh(browser);
  await cy.goto(server.url + path);
  await registerHere(cy, 'cy');
  await stranger.goto(server.url + path);
  await expect(stranger.getByTestId('registration-notice')).toHaveText(/used up/);

  // ada makes a private room with ben.
  await ada.goto(server.url + '/');
  await hydrated(ada);
  await expect(ada.getByTestId('status')).toHaveText('Connected');
  await ada.getByRole('button', { name: 'New private room' }).click();
  const dialog = ada.getByRole('dialog', { name: 'New private room' });
  await dialog.getByLabel('Name').fill('launch');
  await dialog.getByLabel('Members').fill('ben');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await ada.waitForURL(server.url + '/r/~launch');
  await say(ada, 'the plan stays between us');
  await expect(roomItem(ben, '~launch')).toBeVisible();
  await roomItem(ben, '~launch').getByRole('link').click();
  await expect(ben.getByRole('log').locator('li', { hasText: 'the plan stays between us' })).toBeVisible();

  // cy cannot find it: not listed, and its address is a page that does not exist.
  await expect(roomItem(cy, '~launch')).toHaveCount(0);
  const res = await cy.goto(server.url + '/r/~launch');
  expect(res?.status()).toBe(404);
  await expect(cy.getByText('the plan stays between us')).toHaveCount(0);

  // ada bans ben: his open page ends at once, and says why.
  await ada.goto(server.url + '/admin');
  await ada.waitForLoadState('networkidle');
  await ada.getByRole('button', { name: 'Ban ben' }).click();
  await expect(ben.getByTestId('ended')).toHaveText(/banned/);
  await expect(ben.getByTestId('status')).toHaveText('Banned');
  await expect(ben.locator('#message')).toHaveCount(0);
  // And he cannot sign in again.
  const again = await fresh(browser);
  await again.goto(server.url + '/login');
  await formReady(again);
  await again.getByLabel('Name').fill('ben');
  await again.getByLabel(/^Password/).fill('password-of-ben');
  await again.getByRole('button', { name: /Sign in/ }).click();
  await expect(again.getByRole('alert')).toHaveText(/banned/);

  expect(pageErrors.map((e) => e.message)).toEqual([]);
});

test('the first visit to an empty server asks for its first account', async ({ browser }) => {
  const page = await fresh(browser);
  await page.goto(server.url + '/');
  await hydrated(page);
  const ask = page.getByTestId('first-account');
  await expect(ask).toContainText('will be its admin');
  await ask.getByRole('link', { name: 'Create the first account' }).click();
  await page.waitForURL(server.url + '/register');
  await registerHere(page, 'founder');
  // Once it exists, nobody is asked again.
  const next = await fresh(browser);
  await next.goto(server.url + '/');
  await hydrated(next);
  await expect(next.getByTestId('status')).toHaveText('Pick a name to join, or sign in');
  await expect(next.getByTestId('first-account')).toHaveCount(0);
  expect(pageErrors.map((e) => e.message)).toEqual([]);
});
