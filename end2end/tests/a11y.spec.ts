// Accessibility: axe-core scans of the main pages; no serious or critical violation.
import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { Server } from './server';
import { BOT, joinAs, open, say, post } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function scan(page: Page, what: string) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({
      what,
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary),
    }));
  expect(bad, JSON.stringify(bad, null, 2)).toEqual([]);
}

test('the main pages have no serious accessibility problem', async ({ browser }) => {
  // Six axe scans and five browser contexts: slow on a busy 2-core machine.
  test.setTimeout(180_000);
  await post(server, 'general', 'Welcome! Read https://example.com/rules first.');
  // Before picking a nickname.
  const guest = await open(browser, server, '/');
  await scan(guest, 'nickname form');

  // A conversation, light and dark.
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob', '/', { colorScheme: 'dark' });
  await say(alice, 'hello bob');
  await say(bob, 'hi alice, see https://example.org');
  await alice.locator('#message').pressSequentially('typing', { delay: 20 });
  await expect(bob.locator('.typing')).toHaveClass(/shown/);
  await scan(alice, 'conversation (light)');
  await scan(bob, 'conversation (dark)');

  // Unread badges in the sidebar.
  await alice.locator('#join-room-input').fill('random');
  await alice.locator('#join-room-input').press('Enter');
  await expect(alice).toHaveURL(/\/r\/random$/);
  await say(bob, 'unread for alice');
  await expect(alice.locator('.badge')).toHaveCount(1);
  await scan(alice, 'sidebar with unread');

  // A refused direct-message room.
  const carol = await joinAs(browser, server, 'carol');
  await carol.goto(server.url + '/r/dm:alice:bob');
  await expect(carol.locator('.problem.refused')).toBeVisible();
  await scan(carol, 'forbidden DM');

  // French, and a phone with its drawer open.
  const fr = await joinAs(browser, server, 'élodie', '/', {
    locale: 'fr-FR',
    viewport: { width: 390, height: 844 },
  });
  await scan(fr, 'phone (fr)');
  await fr.getByRole('button', { name: 'Salons' }).click();
  await expect(fr.locator('#sidebar')).toBeVisible();
  await scan(fr, 'phone drawer (fr)');
});
