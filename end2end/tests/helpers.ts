// Shared steps of the browser tests: open a page in a fresh browser context
// (its own cookies and localStorage, so each is a different person), pick a
// nickname, say something, post as a bot through the HTTP API.
import { expect, Browser, BrowserContextOptions, Page, WebSocket } from '@playwright/test';
import { Server } from './server';

export const BOT_TOKEN = 'e2e-token-123';
export const BOT = `e2ebot:${BOT_TOKEN}`;

/** A server with the test bot, for tests that post many messages in a
 * row: the rate limits (per user and per address) lifted. */
export const BUSY_ENV: Record<string, string> = {
  CAUSERIE_BOT_TOKENS: BOT,
  CAUSERIE_RATE_PER_SEC: '1000',
  CAUSERIE_RATE_BURST: '1000',
  CAUSERIE_IP_RATE_PER_SEC: '1000',
  CAUSERIE_IP_RATE_BURST: '1000',
};

/** WebSockets each page opened, to check that navigation keeps one. */
export const sockets = new Map<Page, WebSocket[]>();
/** Uncaught errors each page threw (a panic in the WASM shows here). */
export const pageErrors = new Map<Page, Error[]>();

export async function open(
  browser: Browser,
  server: Server,
  path = '/',
  options: BrowserContextOptions = {},
): Promise<Page> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on('dialog', (d) => {
    throw new Error(`unexpected dialog: ${d.message()}`);
  });
  sockets.set(page, []);
  pageErrors.set(page, []);
  page.on('websocket', (ws) => sockets.get(page)!.push(ws));
  page.on('pageerror', (e) => pageErrors.get(page)!.push(e));
  // A Rust panic prints its message to the console before the WASM traps.
  page.on('console', (m) => {
    if (process.env.DEBUG_CONSOLE) console.log(`[${path}] ${m.type()}: ${m.text().slice(0, 300)}`);
    if (m.type() === 'error' && m.text().includes('panicked')) {
      pageErrors.get(page)!.push(new Error(m.text().split('\nStack')[0]));
    }
  });
  await page.goto(server.url + path);
  if (options.javaScriptEnabled !== false) await hydrated(page);
  return page;
}

/** Waits until the page runs in the browser (its forms then work live). */
export async function hydrated(page: Page) {
  await expect(page.locator('.app[data-hydrated]')).toHaveCount(1);
}

/** Opens a page and picks a nickname; resolves once connected. */
export async function joinAs(
  browser: Browser,
  server: Server,
  name: string,
  path = '/',
  options: BrowserContextOptions = {},
): Promise<Page> {
  const page = await open(browser, server, path, options);
  await page.locator('#nickname').fill(name);
  await page.locator('form.nickname button[type=submit]').click();
  await expect(page.getByTestId('status')).toHaveText(/^(Connected|Connecté)$/);
  return page;
}

/** Types a message and presses Enter. */
export async function say(page: Page, text: string) {
  const box = page.locator('#message');
  await box.fill(text);
  await box.press('Enter');
}

/** Posts a message as the bot through the HTTP API. */
export async function post(server: Server, room: string, body: string) {
  const res = await fetch(`${server.url}/api/rooms/${encodeURIComponent(room)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BOT_TOKEN}` },
    body: JSON.stringify({ body }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

/** The sidebar's entry of a room. */
export function roomItem(page: Page, room: string) {
  return page.locator(`#sidebar li.room-item[data-room="${room}"]`);
}

/** Makes the page believe its tab was hidden (or shown again). */
export async function setHidden(page: Page, hidden: boolean) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    Object.defineProperty(document, 'visibilityState', {
      configurable: true,
      get: () => (h ? 'hidden' : 'visible'),
    });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  }, hidden);
}

/** One device of an account: a browser context of its own that registers
 * (the first) or signs in (the others); resolves once connected. */
export async function accountDevice(
  browser: Browser,
  server: Server,
  name: string,
  password: string,
  how: 'register' | 'login',
): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}/${how}`);
  await formReady(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(/^Password/).fill(password);
  await page.getByRole('button', { name: how === 'register' ? 'Register' : 'Sign in' }).click();
  await page.waitForURL(server.url + '/');
  await expect(page.getByTestId('status')).toHaveText('Connected');
  return page;
}

/** Waits until the sign-in or registration form runs in the page: a
 * submit before then would be a plain form post. */
export async function formReady(page: Page) {
  await expect(page.locator('form.auth-form[data-ready]')).toHaveCount(1);
}

/** Opens (joining or creating) a room from the sidebar's box. */
export async function openRoom(page: Page, room: string) {
  await page.locator('#join-room-input').fill(room);
  await page.locator('#join-room-input').press('Enter');
  await expect(page).toHaveURL(new RegExp(`/r/${room}$`));
}

/** Lets the page draw `n` frames: what is on screen counts as read only
 * once it was drawn there. */
export async function drawn(page: Page, n = 4) {
  await page.evaluate(
    (count) =>
      new Promise<void>((done) => {
        const next = (left: number) =>
          left === 0 ? done() : requestAnimationFrame(() => next(left - 1));
        next(count);
      }),
    n,
  );
}

/** Fails if the page threw. */
export function expectNoPageErrors(page: Page) {
  expect(pageErrors.get(page)?.map((e) => e.message) ?? []).toEqual([]);
}
