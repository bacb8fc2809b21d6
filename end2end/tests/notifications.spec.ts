// Desktop notifications of the open app: the page offers to turn them on
// and asks the browser only on a click; a hidden tab shows a notification
// for what the room's level asks for, and nothing else. The real
// Notification is wrapped, still called, so that the test sees each one.
import { test, expect, Browser, BrowserContext, Page } from '@playwright/test';
import { Server } from './server';
import { BOT, post, roomItem, setHidden, expectNoPageErrors, pageErrors, formReady } from './helpers';

let server: Server;

test.describe.configure({ timeout: 90_000 });

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

/** Counts permission requests and keeps every notification made. */
const RECORD = `(() => {
  const Real = window.Notification;
  window.__asked = 0;
  window.__shown = [];
  if (!Real) return;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__shown.push({ title, body: options && options.body, tag: options && options.tag, n: this });
    }
    static get permission() { return Real.permission; }
    static requestPermission(...args) {
      window.__asked++;
      return Real.requestPermission(...args);
    }
  }
  window.Notification = Recorded;
})();`;

async function shown(page: Page) {
  return page.evaluate(() =>
    (window as any).__shown.map((s: any) => ({ title: s.title, body: s.body, tag: s.tag })),
  );
}

async function register(browser: Browser, name: string, grant: boolean): Promise<[BrowserContext, Page]> {
  const context = await browser.newContext();
  if (grant) await context.grantPermissions(['notifications'], { origin: server.url });
  await context.addInitScript(RECORD);
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

test('the page offers notifications and asks the browser only on a click', async ({ browser }) => {
  const [, page] = await register(browser, 'olga', false);
  const offer = page.locator('.notify-offer');
  await expect(offer).toBeVisible();
  await expect(offer).toContainText('Get notified of new messages');
  expect(await page.evaluate(() => (window as any).__asked)).toBe(0);
  await offer.getByRole('button', { name: 'Turn on' }).click();
  await expect.poll(() => page.evaluate(() => (window as any).__asked)).toBe(1);
  expectNoPageErrors(page);
});

test('"Not now" puts the offer away, for this browser', async ({ browser }) => {
  const [, page] = await register(browser, 'pia', false);
  await page.locator('.notify-offer').getByRole('button', { name: 'Not now' }).click();
  await expect(page.locator('.notify-offer')).toHaveCount(0);
  await page.reload();
  await expect(page.getByTestId('status')).toHaveText('Connected');
  await expect(page.locator('.notify-offer')).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__asked)).toBe(0);
  expectNoPageErrors(page);
});

test('a hidden tab notifies a mention once, and not what the level leaves out', async ({ browser }) => {
  const [, page] = await register(browser, 'ned', true);
  // Granted already: nothing to offer.
  await expect(page.locator('.notify-offer')).toHaveCount(0);
  // In the sidebar, so joined, while the page shows general.
  await page.locator('#join-room-input').fill('news');
  await page.locator('#join-room-input').press('Enter');
  await expect(page).toHaveURL(/\/r\/news$/);
  await roomItem(page, 'general').locator('a').click();
  await expect(page).toHaveURL(/\/r\/general$/);

  // A visible tab shows the message; no notification.
  await post(server, 'general', '@ned seen on screen');
  await expect(page.getByRole('log')).toContainText('seen on screen');

  await setHidden(page, true);
  // Public rooms tell mentions only: the first is not worth a notification.
  await post(server, 'news', 'just chatting');
  await post(server, 'news', '@ned look at **this**');
  await expect.poll(() => shown(page)).toHaveLength(1);
  await page.waitForTimeout(500);
  expect(await shown(page)).toEqual([{ title: 'e2ebot in #news', body: '@ned look at this', tag: 'news' }]);

  // Clicking it opens the room.
  await page.evaluate(() => (window as any).__shown[0].n.dispatchEvent(new Event('click')));
  await expect(page).toHaveURL(/\/r\/news$/);
  expectNoPageErrors(page);
});
