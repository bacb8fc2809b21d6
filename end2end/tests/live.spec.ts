// Who is online, typing notices, links, the tab's title, the live region.
import { test, expect } from '@playwright/test';
import { Server } from './server';
import { BOT, joinAs, say, post, roomItem, setHidden, drawn, expectNoPageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('the online list follows people coming and going', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  await expect(alice.locator('.people-list')).toContainText('alice');
  await expect(alice.locator('.people-list .you')).toHaveText('(you)');
  const bob = await joinAs(browser, server, 'bob');
  const carol = await joinAs(browser, server, 'carol');
  await expect(alice.locator('.people-list li')).toHaveCount(3);
  await expect(alice.locator('.online-count')).toHaveText('3 online');
  await expect(roomItem(alice, 'general').locator('.room-online')).toHaveText('3');
  await bob.context().close();
  await expect(alice.locator('.people-list')).not.toContainText('bob');
  await expect(alice.locator('.online-count')).toHaveText('2 online');
  await expect(carol.locator('.people-list li')).toHaveCount(2);
});

test('typing shows "alice is typing…" and fades', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  await alice.locator('#message').pressSequentially('hel', { delay: 30 });
  const typing = bob.locator('.typing');
  await expect(typing).toHaveText('alice is typing…');
  await expect(typing).toHaveClass(/shown/);
  // Alice sees no notice of her own typing.
  await expect(alice.locator('.typing')).not.toHaveClass(/shown/);
  // It fades after a few seconds without more typing.
  await expect(typing).not.toHaveClass(/shown/, { timeout: 9_000 });
  await expect(typing).toHaveText('');
  // A message ends the notice at once.
  await alice.locator('#message').pressSequentially('lo', { delay: 30 });
  await expect(typing).toHaveText('alice is typing…');
  await alice.locator('#message').press('Enter');
  await expect(bob.getByRole('log')).toContainText('hello');
  await expect(typing).toHaveText('');
});

test('links in messages are clickable, and nothing else is markup', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  const body =
    'docs: https://example.com/a?b=1&c=2, also (http://x.test/y). not javascript:alert(1) nor <a href="https://evil.test">x</a>';
  await say(alice, body);
  for (const page of [bob, alice]) {
    const text = page.getByRole('log').locator('li .text', { hasText: 'docs:' });
    await expect(text).toHaveText(body);
    const links = text.locator('a');
    await expect(links).toHaveCount(3);
    await expect(links.nth(0)).toHaveAttribute('href', 'https://example.com/a?b=1&c=2');
    await expect(links.nth(0)).toHaveText('https://example.com/a?b=1&c=2');
    await expect(links.nth(0)).toHaveAttribute('rel', 'noopener noreferrer nofollow');
    await expect(links.nth(0)).toHaveAttribute('target', '_blank');
    await expect(links.nth(1)).toHaveAttribute('href', 'http://x.test/y');
    // The quote ends the address: the typed tag stays text, with no attribute smuggled in.
    await expect(links.nth(2)).toHaveAttribute('href', 'https://evil.test');
    await expect(text.locator('a[href^="javascript"]')).toHaveCount(0);
  }
  // The same from the server's render.
  await bob.reload();
  const text = bob.getByRole('log').locator('li .text', { hasText: 'docs:' });
  await expect(text.locator('a')).toHaveCount(3);
  await expect(text).toHaveText(body);
});

test('a hidden tab counts unread messages in its title', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  await expect(bob).toHaveTitle('#general · Causerie');
  await setHidden(bob, true);
  await say(alice, 'are you there?');
  await expect(bob).toHaveTitle('(1) #general · Causerie');
  await post(server, 'general', 'hello from the bot');
  await expect(bob).toHaveTitle('(2) #general · Causerie');
  // The live region tells screen readers about a message they could not see.
  await expect(bob.locator('[aria-live][aria-atomic]')).toContainText('e2ebot in #general: hello from the bot');
  await setHidden(bob, false);
  await expect(bob).toHaveTitle('#general · Causerie');
  // Back in view, what arrived shows under the "New messages" line, and
  // once drawn on screen it is read.
  await expect(bob.getByRole('separator').filter({ hasText: 'New messages' })).toBeVisible();
  await drawn(bob);
  await setHidden(bob, true);
  await expect(bob).toHaveTitle('#general · Causerie');
  expectNoPageErrors(bob);
});
