// Private rooms from the chat page: alice makes ~design with bob, carol
// (the third person) cannot open it by its address, and bob, removed, sees
// why at once. Then a group conversation of the three.
import { test, expect, Browser, Page } from '@playwright/test';
import { Server } from './server';
import { expectNoPageErrors, hydrated, open, roomItem, say, formReady } from './helpers';

/** Errors the registered people's pages threw (a panic in the WASM shows here). */
const pageErrors: Error[] = [];

let server: Server;

// Three or four people register (argon2 each) on a machine of two cores.
test.describe.configure({ timeout: 120_000 });

test.beforeEach(async () => {
  // Open registration: the three people register without an invite link.
  server = new Server({ CAUSERIE_REGISTRATION: 'open' });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function register(browser: Browser, name: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => pageErrors.push(e));
  await page.goto(server.url + '/register');
  await formReady(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(/^Password/).fill(`password-of-${name}`);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.waitForURL(server.url + '/');
  await hydrated(page);
  await expect(page.getByTestId('status')).toHaveText('Connected');
  return page;
}

test('a private room with two of three people, and a removal', async ({ browser }) => {
  const alice = await register(browser, 'alice');
  const bob = await register(browser, 'bob');
  const carol = await register(browser, 'carol');

  // alice makes ~design with bob; the dialog opens the room.
  await alice.getByRole('button', { name: 'New private room' }).click();
  const dialog = alice.getByRole('dialog', { name: 'New private room' });
  await expect(dialog.getByLabel('Name')).toBeFocused();
  await dialog.getByLabel('Name').fill('design');
  await dialog.getByLabel('Topic (optional)').fill('Mock-ups');
  await dialog.getByLabel('Members').fill('bob');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await alice.waitForURL(server.url + '/r/~design');
  await expect(dialog).toBeHidden();
  await expect(alice.getByRole('heading', { level: 1 })).toHaveText('~design');
  await expect(alice.getByTestId('topic')).toHaveText('Mock-ups');
  await expect(roomItem(alice, '~design').getByRole('img', { name: 'private' })).toBeVisible();
  await say(alice, 'first draft is up');

  // A taken name is said in the dialog.
  await alice.getByRole('button', { name: 'New private room' }).click();
  await dialog.getByLabel('Name').fill('design');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog.getByRole('alert')).toHaveText(/exists already/);
  await alice.keyboard.press('Escape');
  await expect(dialog).toBeHidden();

  // bob sees it in his sidebar, with its lock, and reads it.
  await expect(roomItem(bob, '~design')).toBeVisible();
  await expect(roomItem(bob, '~design').getByRole('img', { name: 'private' })).toBeVisible();
  await roomItem(bob, '~design').getByRole('link').click();
  await bob.waitForURL(server.url + '/r/~design');
  await expect(bob.getByRole('log').locator('li', { hasText: 'first draft is up' })).toBeVisible();

  // carol does not: not in her sidebar, and not by its address.
  await expect(roomItem(carol, '~design')).toHaveCount(0);
  const res = await carol.goto(server.url + '/r/~design');
  expect(res?.status()).toBe(404);
  await expect(carol.getByText(/no room by that name/)).toBeVisible();
  await expect(carol.getByText('first draft is up')).toHaveCount(0);

  // alice removes bob from the members panel; bob's page says so at once.
  await alice.setViewportSize({ width: 1280, height: 800 });
  const members = alice.locator('#people');
  await expect(members.getByRole('heading', { name: 'Members' })).toBeVisible();
  await members.getByRole('button', { name: 'Remove bob' }).click();
  await expect(bob.getByTestId('removed')).toHaveText(/You were removed from ~design by alice/);
  await expect(bob.getByRole('log').locator('li', { hasText: 'first draft is up' })).toHaveCount(0);
  await expect(roomItem(bob, '~design')).toHaveCount(0);
  await expect(bob.locator('#message')).toHaveCount(0);
  await expect(members.getByRole('button', { name: 'Remove bob' })).toHaveCount(0);

  expect(pageErrors.map((e) => e.message)).toEqual([]);
});

test('a group conversation of three', async ({ browser }) => {
  const alice = await register(browser, 'alice');
  const bob = await register(browser, 'bob');
  const carol = await register(browser, 'carol');

  await alice.getByRole('button', { name: 'New conversation' }).click();
  const dialog = alice.getByRole('dialog', { name: 'New conversation' });
  await expect(dialog.getByLabel('People')).toBeFocused();
  // One person is not a group.
  await dialog.getByLabel('People').fill('bob');
  await dialog.getByRole('button', { name: 'Open' }).click();
  await expect(dialog.getByRole('alert')).toHaveText(/2 to 7 people/);
  await dialog.getByLabel('People').fill('carol, bob');
  await dialog.getByRole('button', { name: 'Open' }).click();
  await alice.waitForURL(server.url + '/r/dm:alice:bob:carol');
  await say(alice, 'hello you two');

  // The server tells the others of a new direct room when they next
  // connect (as in version 1); then their sidebar lists it.
  for (const p of [bob, carol]) {
    await p.reload();
    await hydrated(p);
    await expect(roomItem(p, 'dm:alice:bob:carol')).toBeVisible();
    await expect(roomItem(p, 'dm:alice:bob:carol').locator('.room-name')).toHaveText(
      p === bob ? 'alice, carol' : 'alice, bob',
    );
  }
  await roomItem(carol, 'dm:alice:bob:carol').getByRole('link').click();
  await expect(carol.getByRole('log').locator('li', { hasText: 'hello you two' })).toBeVisible();
  expect(pageErrors.map((e) => e.message)).toEqual([]);
});

test('before a name the header invites, it does not say offline', async ({ browser }) => {
  const page = await open(browser, server, '/');
  await expect(page.getByTestId('status')).toHaveText('Pick a name to join, or sign in');
  expectNoPageErrors(page);
});
