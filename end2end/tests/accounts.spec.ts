import { test, expect, Page, Browser } from '@playwright/test';
import { Server } from './server';
import { formReady } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server();
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function register(browser: Browser, name: string, password: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(server.url + '/register');
  await formReady(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(/^Password/).fill(password);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.waitForURL(server.url + '/');
  await expect(page.getByTestId('status')).toHaveText('Connected');
  return page;
}

test('register, chat, sign out and sign in again', async ({ browser }) => {
  const page = await register(browser, 'alice', 'correct horse battery');
  // Signed in: no nickname to pick, the composer is there.
  await expect(page.getByLabel(/nickname/i)).toHaveCount(0);
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill('hello as a member');
  await box.press('Enter');
  const line = page.getByRole('log').locator('li', { hasText: 'hello as a member' });
  await expect(line).not.toHaveClass(/pending/);
  await expect(line.locator('.author')).toHaveText('alice');

  await page.goto(server.url + '/account');
  // What this browser keeps of alice (an outbox, pages kept offline) goes
  // with her session: the next person here finds none of it.
  await page.evaluate(async () => {
    localStorage.setItem('causerie.outbox.alice', '{"general":[]}');
    await (await caches.open('causerie-pages-v1')).put('/kept', new Response('private'));
  });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(server.url + '/');
  await expect(page.getByLabel(/nickname/i)).toBeVisible();
  expect(await page.evaluate(() => localStorage.getItem('causerie.outbox.alice'))).toBeNull();
  expect(
    await page.evaluate(async () => !!(await (await caches.open('causerie-pages-v1')).match('/kept'))),
  ).toBe(false);

  await page.goto(server.url + '/login');
  await formReady(page);
  await page.getByLabel('Name').fill('alice');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('wrong name or password');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(server.url + '/');
  await expect(page.getByTestId('status')).toHaveText('Connected');
});

test('a guest cannot use a registered name', async ({ browser }) => {
  await register(browser, 'bob', 'password-of-bob');
  const guest = await (await browser.newContext()).newPage();
  await guest.goto(server.url + '/');
  await guest.getByLabel(/nickname/i).fill('bob');
  await guest.getByRole('button', { name: 'Join chat' }).click();
  await expect(guest.getByRole('alert')).toContainText('taken');
});

test('a token created in the page lets a script post', async ({ browser }) => {
  const page = await register(browser, 'carol', 'password-of-carol');
  const account = await page.context().newPage();
  await account.goto(server.url + '/account');
  await formReady(account);
  await account.getByLabel('Label').fill('deploy bot');
  await account.getByRole('button', { name: 'Create token' }).click();
  const token = (await account.getByTestId('new-token').textContent())!.trim();
  expect(token).toMatch(/^cz_[0-9a-f]{48}$/);

  const res = await fetch(`${server.url}/api/rooms/general/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ body: 'posted by a script' }),
  });
  expect(res.status).toBe(201);
  const line = page.getByRole('log').locator('li', { hasText: 'posted by a script' });
  await expect(line.locator('.author')).toHaveText('carol');

  await account.reload();
  await account.getByRole('button', { name: 'Revoke' }).click();
  await expect(account.locator('.token')).toHaveCount(0);
  const again = await fetch(`${server.url}/api/rooms/general/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ body: 'after revoking' }),
  });
  expect(again.status).toBe(401);
});
