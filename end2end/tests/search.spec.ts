// Search in the chat page (issue 15): the box, the results panel with its
// marks, a result that opens its room at the message (loading older
// history as needed), the way back to the results; and a direct room
// between two people that a third person's search never shows.
import { test, expect, Page, Browser } from '@playwright/test';
import { Server } from './server';
import { BUSY_ENV, open, post, say, hydrated, expectNoPageErrors, formReady } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server(BUSY_ENV);
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function register(browser: Browser, name: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(server.url + '/register');
  await formReady(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(/^Password/).fill(`password of ${name}`);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.waitForURL(server.url + '/');
  await expect(page.getByTestId('status')).toHaveText('Connected');
  return page;
}

/** Types a query in the header's box and submits it. */
async function search(page: Page, query: string) {
  await page.keyboard.press('Control+k');
  await expect(page.locator('#search')).toBeFocused();
  await page.locator('#search').fill(query);
  await page.locator('#search').press('Enter');
}

test('find an old message, open its room at it, and go back to the results', async ({ browser }) => {
  // 120 messages, one early one about coffee: more than the room's first page
  // (50), so opening it loads older history.
  for (let i = 1; i <= 120; i++) {
    await post(server, 'general', i === 7 ? 'un café crème, merci' : `message number ${i}`);
  }
  await post(server, 'random', 'no coffee here: CAFE is not café crème... only in general? no, here too');

  const page = await register(browser, 'alice');
  // Somewhere else than the room of the result.
  await page.goto(server.url + '/r/lobby');
  await hydrated(page);
  await expect(page.getByTestId('status')).toHaveText('Connected');
  await search(page, 'cafe');

  const panel = page.getByRole('complementary', { name: 'Search messages' });
  await expect(panel.getByRole('heading')).toHaveText('Results for “cafe”');
  const results = panel.locator('.result');
  await expect(results).toHaveCount(2);
  // Newest first; each with its room, author, and the words marked.
  await expect(results.nth(0).locator('.result-room')).toHaveText('#random');
  const first = results.nth(1);
  await expect(first.locator('.result-room')).toHaveText('#general');
  await expect(first.locator('.author')).toHaveText('e2ebot');
  await expect(first.locator('mark')).toHaveText(['café']);
  await expect(results.nth(0).locator('mark')).toHaveText(['CAFE', 'café']);
  const href = await first.locator('a').getAttribute('href');
  expect(href).toMatch(/^\/r\/general\?around=\d+$/);
  const id = href!.split('=')[1];

  // Down to the second result, Enter opens it.
  await page.locator('#search').press('ArrowDown');
  await expect(results.nth(0).locator('a')).toBeFocused();
  await page.keyboard.press('ArrowDown');
  await expect(first.locator('a')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(new RegExp(`/r/general\\?around=${id}$`));
  await expect(page.locator('.room-title')).toHaveText('#general');
  const target = page.getByRole('log').locator(`li[data-id="${id}"]`);
  await expect(target).toContainText('un café crème, merci');
  await expect(target).toHaveAttribute('data-jumped', '');
  await expect(target).toBeInViewport();
  // The panel kept its results, the one opened marked as such.
  await expect(results).toHaveCount(2);
  await expect(first.locator('a')).toHaveAttribute('aria-current', 'true');

  // On a phone the panel steps aside for the room, and comes back.
  await page.setViewportSize({ width: 390, height: 800 });
  await expect(panel).toBeHidden();
  await page.getByRole('button', { name: 'Back to the results' }).click();
  await expect(panel).toBeVisible();
  await expect(results).toHaveCount(2);
  await expect(first.locator('a')).toBeFocused();
  // Escape closes it.
  await page.keyboard.press('Escape');
  await expect(panel).toHaveCount(0);

  // The address alone opens the room at the message, in a new tab too.
  const tab = await page.context().newPage();
  await tab.goto(server.url + href!);
  await hydrated(tab);
  await expect(tab.locator(`li[data-id="${id}"]`)).toBeInViewport();
  await expect(tab.locator(`li[data-id="${id}"]`)).toContainText('un café crème');
  expectNoPageErrors(page);
});

test('more results come as one scrolls; no results, a query too long, a visitor', async ({ browser }) => {
  for (let i = 1; i <= 45; i++) await post(server, 'general', `lunch plan ${i}`);
  const page = await open(browser, server, '/');
  await search(page, 'LUNCH');
  const panel = page.getByRole('complementary', { name: 'Search messages' });
  // A visitor searches the public rooms, and is told so.
  await expect(panel).toContainText('Signed out, you search the public rooms only.');
  const results = panel.locator('.result');
  await expect(results).toHaveCount(20);
  await expect(results.nth(0)).toContainText('lunch plan 45');
  await panel.locator('.search-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(results).toHaveCount(40);
  await panel.locator('.search-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(results).toHaveCount(45);
  await expect(results.nth(44)).toContainText('lunch plan 1');
  await expect(panel.getByRole('button', { name: 'More results' })).toHaveCount(0);

  await search(page, 'dinner');
  await expect(panel.getByRole('status')).toHaveText('No message matches “dinner”.');
  await search(page, 'x'.repeat(201));
  await expect(panel.getByRole('status')).toHaveText('A search is 200 characters at most.');
  expectNoPageErrors(page);
});

test("a direct room between two people is never in a third person's results", async ({ browser }) => {
  const alice = await register(browser, 'alice');
  const bob = await register(browser, 'bob');
  const carol = await register(browser, 'carol');
  await alice.goto(server.url + '/r/dm:alice:bob');
  await expect(alice.getByTestId('status')).toHaveText('Connected');
  await say(alice, 'the secret word is rutabaga');
  await expect(alice.getByRole('log').locator('li', { hasText: 'rutabaga' })).toHaveAttribute('data-id', /\d+/);
  await say(carol, 'I like rutabaga soup');
  await expect(carol.getByRole('log').locator('li', { hasText: 'soup' })).toHaveAttribute('data-id', /\d+/);

  // Bob, a member, finds both; carol only her own.
  await search(bob, 'rutabaga');
  const bobs = bob.locator('.search-panel .result');
  await expect(bobs).toHaveCount(2);
  await expect(bobs.locator('.result-room')).toHaveText(['#general', '@alice']);
  await search(carol, 'rutabaga');
  const carols = carol.locator('.search-panel .result');
  await expect(carols).toHaveCount(1);
  await expect(carols).toContainText('soup');
  await expect(carol.locator('.search-panel')).not.toContainText('secret');
  for (const p of [alice, bob, carol]) expectNoPageErrors(p);
});
