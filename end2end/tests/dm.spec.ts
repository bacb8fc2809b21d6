import { test, expect } from '@playwright/test';
import { Server } from './server';
import { joinAs, say, roomItem, expectNoPageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server();
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('a direct message between two people, that a third cannot open', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  const carol = await joinAs(browser, server, 'carol');

  // Alice picks bob in the online list.
  await alice.getByRole('button', { name: 'Send a direct message to bob' }).click();
  await expect(alice).toHaveURL(/\/r\/dm:alice:bob$/);
  await expect(alice.locator('.room-title')).toHaveText('@bob');
  await expect(alice.locator('.dm-intro')).toContainText('between alice and bob');
  await say(alice, 'psst, bob');
  await expect(alice.getByRole('log').locator('li', { hasText: 'psst, bob' })).toHaveAttribute('data-id', /\d+/);
  // The sidebar lists it with the other person's name.
  await expect(alice.locator('.dm-list')).toContainText('bob');
  await expect(roomItem(alice, 'dm:alice:bob').locator('.room-name')).toHaveText('bob');

  // Bob opens it from his side and answers.
  await bob.getByRole('button', { name: 'Send a direct message to alice' }).click();
  await expect(bob).toHaveURL(/\/r\/dm:alice:bob$/);
  await expect(bob.getByRole('log')).toContainText('psst, bob');
  await say(bob, 'hi alice');
  await expect(alice.getByRole('log')).toContainText('hi alice');
  await expect(roomItem(bob, 'dm:alice:bob').locator('.room-name')).toHaveText('alice');

  // Carol is not one of the two: the server says forbidden, the page says so.
  await carol.goto(server.url + '/r/dm:alice:bob');
  await expect(carol.getByTestId('status')).toHaveText('Connected');
  const refused = carol.locator('.problem.refused');
  await expect(refused).toBeVisible();
  await expect(refused).toContainText('only its two members');
  await expect(carol.getByRole('log').locator('li')).toHaveCount(0);
  await expect(carol.locator('#message')).toHaveCount(0);
  await expect(carol.locator('body')).not.toContainText('psst');
  await expect(roomItem(carol, 'dm:alice:bob')).toHaveCount(0);

  // Nor does the server's page show it to anyone.
  const nojs = await browser.newContext({ javaScriptEnabled: false });
  const page = await nojs.newPage();
  await page.goto(server.url + '/r/dm:alice:bob');
  await expect(page.getByRole('log').locator('li')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText('psst');
  await nojs.close();

  for (const p of [alice, bob, carol]) expectNoPageErrors(p);
});
