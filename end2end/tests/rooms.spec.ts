import { test, expect } from '@playwright/test';
import { Server } from './server';
import { BOT, open, joinAs, say, post, roomItem, sockets, expectNoPageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('rooms: create one, switch without reloading on one socket, unread counts, leave', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  // A page that reloads loses this.
  await bob.evaluate(() => ((window as any).__still = 'same page'));

  // Alice creates a room from the sidebar; its name is normalised.
  await alice.locator('#join-room-input').fill('Random Talk');
  await alice.locator('#join-room-input').press('Enter');
  await expect(alice).toHaveURL(/\/r\/random-talk$/);
  await expect(alice.locator('.room-title')).toHaveText('#random-talk');
  await expect(roomItem(alice, 'random-talk')).toHaveClass(/current/);
  await expect(alice.getByTestId('status')).toHaveText('Connected');

  // A bad name is refused with a reason, and nothing happens.
  await alice.locator('#join-room-input').fill('café!');
  await alice.locator('#join-room-input').press('Enter');
  await expect(alice.locator('#join-room-error')).toContainText('1 to 64');
  await expect(alice).toHaveURL(/\/r\/random-talk$/);

  // Bob joins it too, then goes back to #general: it stays in his sidebar.
  await bob.locator('#join-room-input').fill('random-talk');
  await bob.locator('#join-room-input').press('Enter');
  await expect(bob).toHaveURL(/\/r\/random-talk$/);
  await expect(alice.locator('.online-count')).toHaveText('2 online');
  await roomItem(bob, 'general').locator('a').click();
  await expect(bob).toHaveURL(/\/r\/general$/);
  await expect(bob.locator('.room-title')).toHaveText('#general');

  // Messages in a room not in view count as unread.
  await say(alice, 'first in random');
  await say(alice, 'second in random');
  await expect(roomItem(bob, 'random-talk').locator('.badge')).toHaveText('2');
  await expect(roomItem(bob, 'random-talk')).toHaveClass(/has-unread/);
  await expect(roomItem(bob, 'general').locator('.badge')).toHaveCount(0);
  // Both are in the room: its online count shows in the sidebar.
  await expect(roomItem(alice, 'random-talk').locator('.room-online')).toHaveText('2');

  // Opening the room shows them and clears the count.
  await roomItem(bob, 'random-talk').locator('a').click();
  await expect(bob.getByRole('log')).toContainText('second in random');
  await expect(roomItem(bob, 'random-talk').locator('.badge')).toHaveCount(0);

  // The other way: bob writes in general while alice is in random-talk.
  await roomItem(bob, 'general').locator('a').click();
  await say(bob, 'back in general');
  await expect(roomItem(alice, 'general').locator('.badge')).toHaveText('1');

  // All that without a reload, on one WebSocket.
  expect(await bob.evaluate(() => (window as any).__still)).toBe('same page');
  expect(sockets.get(bob)!.length).toBe(1);

  // Leaving: the room leaves bob's sidebar, and alice sees him go.
  await roomItem(bob, 'random-talk').hover();
  await bob.getByRole('button', { name: 'Leave #random-talk' }).click();
  await expect(roomItem(bob, 'random-talk')).toHaveCount(0);
  await expect(alice.locator('.online-count')).toHaveText('1 online');
  await expect(roomItem(alice, 'random-talk').locator('.room-online')).toHaveText('1');

  // The sidebar is remembered across a reload.
  await bob.locator('#join-room-input').fill('kept');
  await bob.locator('#join-room-input').press('Enter');
  await expect(bob).toHaveURL(/\/r\/kept$/);
  await bob.goto(server.url + '/r/general');
  await expect(bob.getByTestId('status')).toHaveText('Connected');
  await expect(roomItem(bob, 'kept')).toHaveCount(1);
  await expect(roomItem(bob, 'random-talk')).toHaveCount(0);

  expectNoPageErrors(alice);
  expectNoPageErrors(bob);
});

test('each room has its own server-rendered URL', async ({ browser }) => {
  await post(server, 'general', 'in general');
  await post(server, 'music', 'in music');
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url + '/r/music');
  await expect(page.locator('.room-title')).toHaveText('#music');
  await expect(page.getByRole('log').locator('li')).toHaveCount(1);
  await expect(page.getByRole('log')).toContainText('in music');
  await expect(page).toHaveTitle('#music · Causerie');
  // A name that is not a room says so.
  await page.goto(server.url + '/r/Not%20A%20Room');
  await expect(page.locator('.problem')).toContainText('no room by that name');
  await context.close();
});

test('without a nickname, moving to another room shows its history', async ({ browser }) => {
  await post(server, 'general', 'hello general');
  await post(server, 'music', 'in music');
  // No nickname: no socket, so the browser asks for each room's snapshot.
  const page = await open(browser, server, '/r/general');
  await expect(page.getByRole('log')).toContainText('hello general');
  await page.locator('#join-room-input').fill('music');
  await page.locator('#join-room-input').press('Enter');
  await expect(page).toHaveURL(/\/r\/music$/);
  await expect(page.locator('.room-title')).toHaveText('#music');
  await expect(page.getByRole('log').locator('li')).toHaveCount(1);
  await expect(page.getByRole('log')).toContainText('in music');
  // An empty room says so once its snapshot is in.
  await page.locator('#join-room-input').fill('quiet');
  await page.locator('#join-room-input').press('Enter');
  await expect(page.locator('.room-title')).toHaveText('#quiet');
  await expect(page.locator('.empty')).toBeVisible();
  await page.goBack();
  await expect(page.getByRole('log')).toContainText('in music');
  expect(sockets.get(page)!.length).toBe(0);
  expectNoPageErrors(page);
  await page.context().close();
});

test('unread counts come back after a reload, from what was read', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  await alice.locator('#join-room-input').fill('news');
  await alice.locator('#join-room-input').press('Enter');
  await expect(alice).toHaveURL(/\/r\/news$/);
  await post(server, 'news', 'read already');
  await expect(alice.getByRole('log')).toContainText('read already');
  await roomItem(alice, 'general').locator('a').click();
  await post(server, 'news', 'unread 1');
  await expect(roomItem(alice, 'news').locator('.badge')).toHaveText('1');
  await alice.reload();
  await expect(alice.getByTestId('status')).toHaveText('Connected');
  await post(server, 'news', 'unread 2');
  await expect(roomItem(alice, 'news').locator('.badge')).toHaveText('2');
});
