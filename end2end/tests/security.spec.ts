// The security headers in a real browser: a page of another origin cannot
// frame the chat, and the chat works under its own Content-Security-Policy
// with no violation while it hydrates, joins and sends.
import { test, expect, Page } from '@playwright/test';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { Server } from './server';
import { hydrated, say } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server();
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

/** A tiny site of another origin (another port) that frames `src`. */
async function foreignSite(src: string): Promise<{ url: string; close: () => Promise<void> }> {
  const site = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!DOCTYPE html><title>elsewhere</title><iframe id="chat" src="${src}" width="800" height="600"></iframe>`);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const port = (site.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => site.close(() => resolve())),
  };
}

test('a page of another origin cannot frame the chat', async ({ browser }) => {
  const site = await foreignSite(`${server.url}/r/general`);
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(site.url);
    // Give a framed chat every chance to load, hydrate and connect.
    await page.waitForTimeout(3000);
    const chat = page.frames().find((f) => f !== page.mainFrame());
    expect(chat, 'the iframe exists').toBeTruthy();
    // Blocked, the frame holds the browser's error page, not the chat.
    expect(await chat!.locator('.app').count()).toBe(0);
    expect(sockets).toEqual([]);
    await context.close();
  } finally {
    await site.close();
  }
});

/** Records CSP violations and console errors from before the first script. */
async function watched(page: Page): Promise<() => Promise<string[]>> {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript(() => {
    (window as any).__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as any).__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return async () => [...errors, ...(await page.evaluate(() => (window as any).__violations as string[]))];
}

test('the chat hydrates, joins and sends under its CSP with no violation', async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = await watched(page);
  const res = await page.goto(`${server.url}/r/general`);
  const csp = res!.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toMatch(/'nonce-[A-Za-z0-9+/=_-]+'/);
  expect(csp).toContain("'wasm-unsafe-eval'");
  await hydrated(page);
  await page.locator('#nickname').fill('cleo');
  await page.locator('form.nickname button[type=submit]').click();
  await expect(page.getByTestId('status')).toHaveText(/^(Connected|Connecté)$/);
  await say(page, 'under a strict policy');
  await expect(page.getByRole('log').locator('li', { hasText: 'under a strict policy' })).toBeVisible();
  // The sign-in page too (it has no chat to mark as hydrated: wait until
  // its scripts and WebAssembly have loaded and run).
  await page.goto(`${server.url}/login`);
  await page.waitForLoadState('networkidle');
  await expect(page.locator('form.auth-form')).toBeVisible();
  expect(await problems()).toEqual([]);
  await context.close();
});
