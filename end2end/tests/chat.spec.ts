import { test, expect, Page, Browser } from '@playwright/test';
import { Server } from './server';

const BOT = 'e2ebot:e2e-token-123';

let server: Server;

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function joinAs(browser: Browser, name: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('dialog', (d) => {
    throw new Error(`unexpected dialog: ${d.message()}`);
  });
  await page.goto(server.url + '/');
  // Until the WASM runs, the form would submit as a plain HTML form.
  await expect(page.locator('.app[data-hydrated]')).toHaveCount(1);
  await page.getByLabel(/nickname/i).fill(name);
  await page.getByRole('button', { name: 'Join chat' }).click();
  await expect(page.getByTestId('status')).toHaveText('Connected');
  return page;
}

async function say(page: Page, text: string) {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

async function post(body: string) {
  const res = await fetch(`${server.url}/api/rooms/general/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer e2e-token-123' },
    body: JSON.stringify({ body }),
  });
  expect(res.status).toBe(201);
}

test('two people chat both ways, with presence', async ({ browser }) => {
  const alice = await joinAs(browser, 'alice');
  const bob = await joinAs(browser, 'bob');

  await expect(alice.locator('.people-list')).toContainText('bob');
  await expect(alice.locator('.online-count')).toHaveText('2 online');

  await say(alice, 'hello bob');
  const atBob = bob.getByRole('log').locator('li', { hasText: 'hello bob' });
  await expect(atBob).toBeVisible();
  await expect(atBob.locator('.author')).toHaveText('alice');
  await expect(atBob.locator('time')).toHaveText(/^\d\d:\d\d$/);

  await say(bob, 'hi alice');
  await expect(alice.getByRole('log')).toContainText('hi alice');
  // The sender's own line is confirmed by its ack, not left pending.
  const own = alice.getByRole('log').locator('li', { hasText: 'hello bob' });
  await expect(own).not.toHaveClass(/pending/);
  await expect(own).toHaveAttribute('data-id', /\d+/);

  await bob.context().close();
  await expect(alice.locator('.people-list')).not.toContainText('bob');
  await expect(alice.locator('.online-count')).toHaveText('1 online');
});

test('the server-rendered page shows history without JavaScript', async ({ browser }) => {
  await post('first from the bot');
  await post('second from the bot');
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url + '/');
  const log = page.getByRole('log');
  await expect(log.locator('li')).toHaveCount(2);
  await expect(log.locator('li').nth(0)).toContainText('first from the bot');
  await expect(log.locator('li').nth(1)).toContainText('second from the bot');
  await expect(page.locator('.room-title')).toHaveText('#general');
});

test('markup in a message shows as text', async ({ browser }) => {
  const alice = await joinAs(browser, 'alice');
  const bob = await joinAs(browser, 'bob');
  const evil = '<img src=x onerror=alert(1)>';
  await say(alice, evil);
  for (const page of [alice, bob]) {
    const line = page.getByRole('log').locator('li .text', { hasText: evil });
    await expect(line).toHaveText(evil);
    await expect(page.getByRole('log').locator('img')).toHaveCount(0);
  }
  // And after a reload, from the server's render.
  await bob.reload();
  await expect(bob.getByRole('log').locator('li .text', { hasText: evil })).toHaveText(evil);
  await expect(bob.getByRole('log').locator('img')).toHaveCount(0);
});

test('after a server restart the page reconnects and shows what it missed', async ({ browser }) => {
  const alice = await joinAs(browser, 'alice');
  await say(alice, 'before the restart');
  await expect(alice.getByRole('log').locator('li', { hasText: 'before the restart' })).not.toHaveClass(/pending/);

  await server.stop();
  await expect(alice.getByTestId('status')).toHaveText(/Reconnecting|Connecting/);
  await server.start();
  await post('while you were away 1');
  await post('while you were away 2');

  await expect(alice.getByTestId('status')).toHaveText('Connected', { timeout: 30_000 });
  const log = alice.getByRole('log');
  await expect(log).toContainText('while you were away 2');
  const texts = await log.locator('li .text').allTextContents();
  expect(texts).toEqual(['before the restart', 'while you were away 1', 'while you were away 2']);
});

test('a nickname typed before the page hydrates is kept', async ({ browser }) => {
  const page = await (await browser.newContext()).newPage();
  // Hold the WASM back, so that the name is typed into the server-rendered
  // form and the page hydrates afterwards.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/pkg/*.wasm', async (route) => {
    await held;
    await route.continue();
  });
  await page.goto(server.url + '/');
  await page.locator('#nickname').fill('early');
  release();
  await expect(page.locator('.app[data-hydrated]')).toHaveCount(1);
  await expect(page.locator('#nickname')).toHaveValue('early');
  await page.locator('form.nickname button[type=submit]').click();
  await expect(page.getByTestId('status')).toHaveText('Connected');
  await expect(page.locator('.me')).toContainText('early');
});
