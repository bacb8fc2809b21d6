// Read state kept on the server: one account on two devices (two browser
// contexts, each with its own storage), where reading on one clears the
// unread count on the other, live, and the other counts on from there.
import { test, expect, Browser, Page } from '@playwright/test';
import { Server } from './server';
import { BOT, post, roomItem, accountDevice, openRoom, expectNoPageErrors } from './helpers';

let server: Server;

test.describe.configure({ timeout: 90_000 });

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

const PASSWORD = 'password-of-ann';

function device(browser: Browser, how: 'register' | 'login'): Promise<Page> {
  return accountDevice(browser, server, 'ann', PASSWORD, how);
}

test('reading on one device clears the count on the other', async ({ browser }) => {
  const a = await device(browser, 'register');
  const b = await device(browser, 'login');
  await post(server, 'news', 'before anyone read');
  for (const page of [a, b]) {
    await openRoom(page, 'news');
    await expect(page.getByRole('log')).toContainText('before anyone read');
    await roomItem(page, 'general').locator('a').click();
    await expect(page).toHaveURL(/\/r\/general$/);
  }

  await post(server, 'news', 'unread one');
  await post(server, 'news', 'unread two');
  for (const page of [a, b]) {
    await expect(roomItem(page, 'news').locator('.badge')).toHaveText('2');
  }

  // Read on A: B's count goes, without B doing anything.
  await roomItem(a, 'news').locator('a').click();
  await expect(a.getByRole('log')).toContainText('unread two');
  await expect(roomItem(a, 'news').locator('.badge')).toHaveCount(0);
  await expect(roomItem(b, 'news').locator('.badge')).toHaveCount(0);

  // B counts from where A read: one new message is one, not three.
  await roomItem(a, 'general').locator('a').click();
  await expect(a).toHaveURL(/\/r\/general$/);
  await post(server, 'news', 'unread three');
  for (const page of [a, b]) {
    await expect(roomItem(page, 'news').locator('.badge')).toHaveText('1');
  }
  for (const page of [a, b]) expectNoPageErrors(page);
});

test('a notification level chosen on one device shows on the other', async ({ browser }) => {
  const a = await device(browser, 'register');
  const b = await device(browser, 'login');
  for (const page of [a, b]) {
    if (!(await page.locator('#notify-level').isVisible())) await page.locator('.people-btn').click();
    // General is a public room: mentions by default.
    await expect(page.locator('#notify-level')).toHaveValue('mentions');
  }
  await a.locator('#notify-level').selectOption('none');
  await expect(b.locator('#notify-level')).toHaveValue('none');
  // Kept for a new page of the same account.
  await b.reload();
  await expect(b.getByTestId('status')).toHaveText('Connected');
  if (!(await b.locator('#notify-level').isVisible())) await b.locator('.people-btn').click();
  await expect(b.locator('#notify-level')).toHaveValue('none');
  for (const page of [a, b]) expectNoPageErrors(page);
});
