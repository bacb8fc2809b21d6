// The README's pictures: a lively #general seen on a desktop (light), in
// dark mode, and on a phone. Every run takes them (so the scene keeps
// working); `CAUSERIE_SCREENSHOTS=1 npx playwright test screenshots` also
// writes them to docs/.
import { test, expect, Page, BrowserContextOptions } from '@playwright/test';
import path from 'node:path';
import { Server } from './server';
import { joinAs, say, roomItem, expectNoPageErrors } from './helpers';

const BOT_TOKEN = 'shot-token';
let server: Server;

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: `deploybot:${BOT_TOKEN}` });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function botSays(room: string, body: string) {
  const res = await fetch(`${server.url}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BOT_TOKEN}` },
    body: JSON.stringify({ body }),
  });
  expect(res.status).toBe(201);
}

/** On a phone the sidebar is behind the menu button. */
async function openMenu(page: Page) {
  const menu = page.locator('.menu-btn');
  if (await menu.isVisible()) await menu.click();
}

async function go(page: Page, room: string) {
  await openMenu(page);
  await roomItem(page, room).locator('a').click();
  await expect(page).toHaveURL(new RegExp(`/r/${room}$`));
}

/** The direct-message room of two people: names sorted. */
function dm(a: string, b: string): string {
  return 'dm:' + [a, b].sort().join(':');
}

async function joinRoom(page: Page, room: string) {
  await openMenu(page);
  await page.locator('#join-room-input').fill(room);
  await page.locator('#join-room-input').press('Enter');
  await expect(page).toHaveURL(new RegExp(`/r/${room}$`));
}

test('screenshots of desktop, dark mode and phone', async ({ browser }, testInfo) => {
  test.setTimeout(120_000);
  const desktop: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
  const bob = await joinAs(browser, server, 'bob', '/', desktop);
  const carol = await joinAs(browser, server, 'carol', '/', desktop);

  // Three readers, each with rooms in the sidebar and a DM with bob.
  const viewers: [string, BrowserContextOptions, string][] = [
    ['alice', { ...desktop, colorScheme: 'light' }, 'screenshot.png'],
    ['dave', { ...desktop, colorScheme: 'dark' }, 'screenshot-dark.png'],
    ['emma', { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }, 'screenshot-phone.png'],
  ];
  const pages: Page[] = [];
  for (const [name, options] of viewers) {
    const page = await joinAs(browser, server, name, '/', options);
    await joinRoom(page, 'random');
    await joinRoom(page, 'design');
    await page.goto(`${server.url}/r/${dm('bob', name)}`);
    await expect(page.getByTestId('status')).toHaveText('Connected');
    await go(page, 'general');
    pages.push(page);
  }

  await botSays('general', 'Deploy of causerie 0.2 finished ✅ Release notes: https://example.com/causerie/0.2');
  await say(bob, 'Nice! The new sidebar with unread counts is great.');
  await say(carol, 'Direct messages work too: pick someone in the online list.');
  await say(carol, 'And the whole UI speaks French now 🇫🇷');
  await say(pages[0], 'Shall we move the design review to #design?');
  await say(bob, 'Sure, see you there in 5 minutes.');
  for (const [name] of viewers) {
    await bob.goto(`${server.url}/r/${dm('bob', name)}`);
    await expect(bob.getByTestId('status')).toHaveText('Connected');
    await say(bob, `Got a minute, ${name}? 🙂`);
  }
  await bob.goto(`${server.url}/r/general`);
  await joinRoom(carol, 'random');
  await say(carol, 'Anyone up for lunch?');
  await say(carol, 'The new place across the street?');
  await botSays('random', 'Reminder: team photo on Friday 📸');
  await go(carol, 'general');

  for (const page of pages) {
    await expect(roomItem(page, 'random').locator('.badge')).toHaveText('3');
    const me = await page.evaluate(() => localStorage.getItem('causerie.name'));
    await expect(roomItem(page, dm('bob', me!)).locator('.badge')).toHaveText('1');
  }
  await carol.locator('#message').pressSequentially('On it', { delay: 40 });
  for (const page of pages) await expect(page.locator('.typing')).toHaveClass(/shown/);

  const docs = path.resolve(__dirname, '..', '..', 'docs');
  for (let i = 0; i < viewers.length; i++) {
    const file = process.env.CAUSERIE_SCREENSHOTS
      ? path.join(docs, viewers[i][2])
      : testInfo.outputPath(viewers[i][2]);
    // Let the typing dots and fonts settle.
    await pages[i].waitForTimeout(300);
    await pages[i].screenshot({ path: file, animations: 'disabled' });
    expectNoPageErrors(pages[i]);
  }
});
