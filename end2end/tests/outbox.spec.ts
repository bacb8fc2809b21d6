// The offline outbox: a message typed offline waits, visibly, in this
// browser (across a reload, the page itself coming from the service
// worker), and is sent exactly once when the connection is back; and a
// message whose first attempt reached the server but whose ack was lost is
// not stored twice when sent again (the server keeps the first by nonce).
import { test, expect, Browser, BrowserContext, Page } from '@playwright/test';
import { Server } from './server';
import { BOT, BOT_TOKEN, joinAs, hydrated, say, expectNoPageErrors, pageErrors, formReady } from './helpers';

let server: Server;

test.describe.configure({ timeout: 90_000 });

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function register(browser: Browser, name: string): Promise<[BrowserContext, Page]> {
  const context = await browser.newContext();
  const page = await context.newPage();
  pageErrors.set(page, []);
  page.on('pageerror', (e) => pageErrors.get(page)!.push(e));
  await page.goto(`${server.url}/register`);
  await formReady(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(/^Password/).fill(`password-of-${name}`);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.waitForURL(server.url + '/');
  await expect(page.getByTestId('status')).toHaveText('Connected');
  return [context, page];
}

/** The bodies stored in a room, as the HTTP API gives them. */
async function stored(room: string): Promise<string[]> {
  const res = await fetch(`${server.url}/api/rooms/${room}/messages`, {
    headers: { authorization: `Bearer ${BOT_TOKEN}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()).messages.map((m: { body: string }) => m.body);
}

function line(page: Page, text: string) {
  return page.locator('ol.messages > li').filter({ has: page.locator('.text', { hasText: new RegExp(`^${text}$`) }) });
}

test('a message typed offline survives a reload and is sent once, back online', async ({ browser }) => {
  const bob = await joinAs(browser, server, 'bob');
  const [context, ann] = await register(browser, 'ann');
  // The service worker runs the page from now on, and keeps it.
  await ann.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 20_000 });
  await ann.reload();
  await expect(ann.getByTestId('status')).toHaveText('Connected');

  await context.setOffline(true);
  await expect(ann.getByTestId('status')).not.toHaveText('Connected');
  await say(ann, 'written offline');
  await expect(line(ann, 'written offline').locator('.state')).toHaveText('Waiting for the connection…');

  // The page loads offline, from the worker's copy, and still has it.
  await ann.reload();
  await hydrated(ann);
  await expect(line(ann, 'written offline')).toHaveCount(1);
  await expect(line(ann, 'written offline').locator('.state')).toHaveText('Waiting for the connection…');
  expect(await stored('general')).not.toContain('written offline');

  await context.setOffline(false);
  await expect(ann.getByTestId('status')).toHaveText('Connected');
  await expect(line(ann, 'written offline').locator('.state')).toHaveCount(0);
  await expect(line(bob, 'written offline')).toHaveCount(1);
  await expect.poll(() => stored('general')).toContain('written offline');
  // Once, and still once after another page of ann's and a moment.
  await ann.reload();
  await expect(ann.getByTestId('status')).toHaveText('Connected');
  await ann.waitForTimeout(500);
  expect((await stored('general')).filter((b) => b === 'written offline')).toHaveLength(1);
  await expect(line(ann, 'written offline')).toHaveCount(1);
  await expect(line(bob, 'written offline')).toHaveCount(1);
  for (const page of [ann, bob]) expectNoPageErrors(page);
});

test('a send whose ack was lost is not stored twice', async ({ browser }) => {
  const bob = await joinAs(browser, server, 'bob');
  const [, ann] = await register(browser, 'ann');
  // Between page and server: once the send of "ack lost" has gone through
  // a socket, nothing more comes back on that socket (not its ack, not
  // its message). Sockets opened later pass everything.
  let opened = 0;
  let cutOn = 0;
  await ann.routeWebSocket(/\/ws$/, (ws) => {
    const n = ++opened;
    const upstream = ws.connectToServer();
    ws.onMessage((m) => {
      upstream.send(m);
      if (!cutOn && typeof m === 'string' && m.includes('"type":"send"') && m.includes('ack lost')) cutOn = n;
    });
    upstream.onMessage((m) => {
      if (cutOn !== n) ws.send(m);
    });
  });
  // Routed from the next socket on.
  await ann.reload();
  await expect(ann.getByTestId('status')).toHaveText('Connected');

  await say(ann, 'ack lost');
  await expect(line(bob, 'ack lost')).toHaveCount(1);
  expect(cutOn).toBeGreaterThan(0);
  // Stored, but the page was never told: it still shows it pending.
  await expect(line(ann, 'ack lost')).toHaveClass(/pending/);

  // A new page of ann's (the outbox in this browser) sends it again, or
  // finds it stored: either way, once.
  await ann.reload();
  await expect(ann.getByTestId('status')).toHaveText('Connected');
  await expect(line(ann, 'ack lost')).toHaveCount(1);
  await expect(line(ann, 'ack lost')).not.toHaveClass(/pending/);
  await ann.waitForTimeout(500);
  expect((await stored('general')).filter((b) => b === 'ack lost')).toHaveLength(1);
  await expect(line(bob, 'ack lost')).toHaveCount(1);
  for (const page of [ann, bob]) expectNoPageErrors(page);
});
