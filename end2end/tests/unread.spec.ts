// Honest read counting and the "New messages" line: messages count as read
// only once on screen in a visible tab, and a room opens at its first
// unread message. One account on several devices (browser contexts with
// their own storage): device A's unread badge shows what the server holds
// as read, so it tells whether device B sent a `read`.
import { test, expect, Browser, Page } from '@playwright/test';
import { Server } from './server';
import { BUSY_ENV, post, roomItem, setHidden, accountDevice, openRoom, expectNoPageErrors } from './helpers';

let server: Server;

test.describe.configure({ timeout: 120_000 });

test.beforeEach(async () => {
  server = new Server(BUSY_ENV);
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

const PASSWORD = 'password-of-ned';

function device(browser: Browser, how: 'register' | 'login'): Promise<Page> {
  return accountDevice(browser, server, 'ned', PASSWORD, how);
}

/** The message whose text is exactly `text`. */
function message(page: Page, text: string) {
  return page.locator('ol.messages > li').filter({ has: page.locator('.text', { hasText: new RegExp(`^${text}$`) }) });
}

const two = (i: number) => String(i).padStart(2, '0');

test('a hidden tab reads nothing; coming back shows the first unread under the line', async ({ browser }) => {
  const a = await device(browser, 'register');
  const b = await device(browser, 'login');
  for (let i = 1; i <= 3; i++) await post(server, 'news', `old ${i}`);
  await openRoom(a, 'news');
  await expect(a.getByRole('log')).toContainText('old 3');
  await roomItem(a, 'general').locator('a').click();
  await expect(a).toHaveURL(/\/r\/general$/);
  await openRoom(b, 'news');
  await expect(b.getByRole('log')).toContainText('old 3');
  await expect(roomItem(a, 'news').locator('.badge')).toHaveCount(0);

  // B's tab is hidden, in the room, while 40 messages arrive there.
  await setHidden(b, true);
  for (let i = 1; i <= 40; i++) await post(server, 'news', `new ${two(i)}`);
  await expect(message(b, 'new 40')).toHaveCount(1);
  await expect(b).toHaveTitle(/^\(40\) /);
  await expect(roomItem(a, 'news').locator('.badge')).toHaveText('40');
  // A read sent by the hidden tab would reach A within this time.
  await b.waitForTimeout(1000);
  await expect(roomItem(a, 'news').locator('.badge')).toHaveText('40');
  await expect(b.locator('.new-line')).toHaveCount(0);

  // Back in the tab: the line above the first unread, which is in view;
  // only what is on screen is read, so A still counts the rest.
  await setHidden(b, false);
  await expect(message(b, 'new 01').locator('.new-line')).toBeVisible();
  await expect(b.locator('.new-line')).toHaveCount(1);
  await expect(b.locator('.new-line')).toHaveText('New messages');
  await expect(message(b, 'new 01')).toBeInViewport();
  await expect(message(b, 'new 40')).not.toBeInViewport();
  await expect(roomItem(a, 'news').locator('.badge')).not.toHaveText('40');
  const left = Number(await roomItem(a, 'news').locator('.badge').textContent());
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThan(40);

  // Scrolled to the bottom, everything was seen.
  await b.locator('.scroller').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(roomItem(a, 'news').locator('.badge')).toHaveCount(0);
  for (const page of [a, b]) expectNoPageErrors(page);
});

test('opening a room shows the first unread under the line, on any device', async ({ browser }) => {
  const a = await device(browser, 'register');
  for (let i = 1; i <= 30; i++) await post(server, 'news', `old ${two(i)}`);
  await openRoom(a, 'news');
  await expect(message(a, 'old 30')).toBeInViewport();
  // Everything read: no line, the newest in view.
  await expect(a.locator('.new-line')).toHaveCount(0);
  await roomItem(a, 'general').locator('a').click();
  await expect(a).toHaveURL(/\/r\/general$/);

  for (let i = 1; i <= 30; i++) await post(server, 'news', `later ${two(i)}`);
  await expect(roomItem(a, 'news').locator('.badge')).toHaveText('30');

  // On a new device, whose browser remembers nothing: the position is the server's.
  const c = await device(browser, 'login');
  await openRoom(c, 'news');
  await expect(message(c, 'later 01').locator('.new-line')).toBeVisible();
  await expect(c.locator('.new-line')).toHaveCount(1);
  await expect(message(c, 'later 01')).toBeInViewport();
  await expect(message(c, 'later 30')).not.toBeInViewport();
  await c.locator('.scroller').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(roomItem(a, 'news').locator('.badge')).toHaveCount(0);
  await roomItem(c, 'general').locator('a').click();
  await expect(c).toHaveURL(/\/r\/general$/);

  // On the first device, from the sidebar.
  for (let i = 1; i <= 30; i++) await post(server, 'news', `last ${two(i)}`);
  await expect(roomItem(a, 'news').locator('.badge')).toHaveText('30');
  await roomItem(a, 'news').locator('a').click();
  await expect(message(a, 'last 01').locator('.new-line')).toBeVisible();
  await expect(a.locator('.new-line')).toHaveCount(1);
  await expect(message(a, 'last 01')).toBeInViewport();
  await expect(message(a, 'last 30')).not.toBeInViewport();
  for (const page of [a, c]) expectNoPageErrors(page);
});
