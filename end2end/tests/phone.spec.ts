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

const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true };

test('on a phone the sidebar and the online list fold away behind buttons', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice', '/', phone);
  const bob = await joinAs(browser, server, 'bob');
  const sidebar = alice.locator('#sidebar');
  const people = alice.locator('#people');
  await expect(sidebar).toBeHidden();
  await expect(people).toBeHidden();
  // Nothing wider than the screen.
  expect(await alice.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  // The composer is on screen, full width.
  const box = await alice.locator('.composer').boundingBox();
  expect(box!.width).toBeGreaterThan(340);
  expect(box!.y + box!.height).toBeLessThanOrEqual(844);

  await say(alice, 'from my phone');
  await expect(bob.getByRole('log')).toContainText('from my phone');

  // The menu opens the sidebar; picking a room closes it.
  const menu = alice.getByRole('button', { name: 'Rooms' });
  await expect(menu).toHaveAttribute('aria-expanded', 'false');
  await menu.click();
  await expect(sidebar).toBeVisible();
  await expect(menu).toHaveAttribute('aria-expanded', 'true');
  await alice.locator('#join-room-input').fill('mobile');
  await alice.locator('#join-room-input').press('Enter');
  await expect(alice).toHaveURL(/\/r\/mobile$/);
  await expect(sidebar).toBeHidden();
  await menu.click();
  await roomItem(alice, 'general').locator('a').click();
  await expect(alice).toHaveURL(/\/r\/general$/);
  await expect(sidebar).toBeHidden();

  // The people button opens the online list; Escape closes it.
  await alice.getByRole('button', { name: 'Who is online' }).click();
  await expect(people).toBeVisible();
  await expect(people).toContainText('bob');
  await alice.keyboard.press('Escape');
  await expect(people).toBeHidden();
  // So does a tap outside it.
  await alice.getByRole('button', { name: 'Who is online' }).click();
  await expect(people).toBeVisible();
  await alice.locator('.backdrop').click({ position: { x: 20, y: 400 } });
  await expect(people).toBeHidden();
  expectNoPageErrors(alice);
});
