import { test, expect, Page } from '@playwright/test';
import { Server } from './server';
import { BUSY_ENV, joinAs, post, roomItem, expectNoPageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server(BUSY_ENV);
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function postMany(room: string, n: number) {
  for (let i = 1; i <= n; i++) await post(server, room, `${room} message ${i}`);
}

/**
 * Scrolls the conversation to its top until `count` messages are shown. It
 * scrolls again only while fewer are shown: scrolling once more after the
 * page arrived would rightly load the next one.
 */
async function scrollBackTo(page: Page, count: number) {
  const log = page.getByRole('log').locator('li');
  await expect(async () => {
    const shown = await page
      .locator('.scroller')
      .evaluate((el, want) => {
        const n = el.querySelectorAll('[role=log] li').length;
        if (n < want) el.scrollTop = 0;
        return n;
      }, count);
    expect(shown).toBe(count);
  }).toPass({ timeout: 20_000 });
  await expect(log).toHaveCount(count);
}

async function texts(page: Page): Promise<string[]> {
  return page.getByRole('log').locator('li .text').allTextContents();
}

test('infinite scroll-back, in one room and after switching rooms', async ({ browser }) => {
  test.setTimeout(120_000);
  await postMany('general', 120);
  await postMany('other', 60);
  const alice = await joinAs(browser, server, 'alice');
  const log = alice.getByRole('log').locator('li');
  await expect(log).toHaveCount(50);
  await expect(log.last()).toContainText('general message 120');
  // The newest message is in view.
  await expect(log.last()).toBeInViewport();

  await scrollBackTo(alice, 100);
  // What was in view stays in view: the page did not jump to the very top.
  expect(await alice.locator('.scroller').evaluate((el) => el.scrollTop)).toBeGreaterThan(100);
  await scrollBackTo(alice, 120);
  await expect(alice.locator('.older')).toHaveCount(0);
  expect(await texts(alice)).toEqual(Array.from({ length: 120 }, (_, i) => `general message ${i + 1}`));

  // Another room: its own history, its own scroll-back.
  await alice.locator('#join-room-input').fill('other');
  await alice.locator('#join-room-input').press('Enter');
  await expect(alice).toHaveURL(/\/r\/other$/);
  await expect(log).toHaveCount(50);
  await expect(log.last()).toContainText('other message 60');
  await expect(log.last()).toBeInViewport();
  await scrollBackTo(alice, 60);
  expect(await texts(alice)).toEqual(Array.from({ length: 60 }, (_, i) => `other message ${i + 1}`));

  // And back: general kept everything it loaded, and shows the newest.
  await roomItem(alice, 'general').locator('a').click();
  await expect(log).toHaveCount(120);
  await expect(log.last()).toBeInViewport();
  expectNoPageErrors(alice);
});

test('new messages keep the view at the bottom, unless the reader scrolled up', async ({ browser }) => {
  await postMany('general', 40);
  const alice = await joinAs(browser, server, 'alice');
  const log = alice.getByRole('log').locator('li');
  await expect(log).toHaveCount(40);
  await post(server, 'general', 'fresh one');
  await expect(log.last()).toContainText('fresh one');
  await expect(log.last()).toBeInViewport();
  await expect(alice.locator('.jump')).toHaveCount(0);

  // Scrolled up: new messages do not move the view; a button says they came.
  await alice.locator('.scroller').evaluate((el) => (el.scrollTop = 0));
  await expect(alice.locator('.jump')).toBeVisible();
  await post(server, 'general', 'while reading old ones');
  await expect(alice.locator('.jump')).toHaveText(/1 new message/);
  await expect(log.last()).not.toBeInViewport();
  await alice.locator('.jump').click();
  await expect(log.last()).toBeInViewport();
  await expect(alice.locator('.jump')).toHaveCount(0);
});
