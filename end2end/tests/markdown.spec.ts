// Formatted message bodies (ui/markdown.rs): code blocks with a working
// Copy button, mentions, and typed HTML that stays text and never runs,
// the same from the server's page and once it hydrates.
import { test, expect, Browser, BrowserContextOptions, Page } from '@playwright/test';
import path from 'node:path';
import { Server } from './server';
import { BOT, hydrated, post, say, expectNoPageErrors, pageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

/** Console lines of each page that speak of hydration (a mismatch warns). */
const hydrationNotes = new Map<Page, string[]>();

/** Opens #general as `name`, recording the console from the first load. */
async function joinWatched(browser: Browser, name: string, options: BrowserContextOptions = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  hydrationNotes.set(page, []);
  pageErrors.set(page, []);
  page.on('pageerror', (e) => pageErrors.get(page)!.push(e));
  page.on('console', (m) => {
    if (/hydrat/i.test(m.text()) && m.type() !== 'log' && m.type() !== 'debug') {
      hydrationNotes.get(page)!.push(`${m.type()}: ${m.text()}`);
    }
    if (m.type() === 'error' && m.text().includes('panicked')) pageErrors.get(page)!.push(new Error(m.text()));
  });
  await page.goto(server.url + '/');
  await hydrated(page);
  await page.locator('#nickname').fill(name);
  await page.locator('form.nickname button[type=submit]').click();
  await expect(page.getByTestId('status')).toHaveText('Connected');
  return page;
}

function expectClean(page: Page) {
  expectNoPageErrors(page);
  expect(hydrationNotes.get(page)).toEqual([]);
}

const CODE = 'fn main() {\n    println!("a very long line that the code block scrolls sideways, never wraps: {}", 42);\n}';

test('a code block is monospace, scrolls sideways, and its Copy button copies', async ({ browser }) => {
  await post(server, 'general', `**Build** it with:\n\`\`\`rust\n${CODE}\n\`\`\``);
  const alice = await joinWatched(browser, 'alice', {
    permissions: ['clipboard-read', 'clipboard-write'],
    viewport: { width: 800, height: 700 },
  });
  const block = alice.getByRole('log').locator('.codeblock');
  await expect(block.locator('pre code')).toHaveText(CODE);
  await expect(alice.getByRole('log').locator('strong', { hasText: 'Build' })).toHaveCount(1);
  const font = await block.locator('pre').evaluate((el) => getComputedStyle(el).fontFamily);
  expect(font).toMatch(/monospace/);
  // One long line: the block scrolls instead of wrapping or widening the page.
  const pre = await block.locator('pre').evaluate((el) => ({
    scroll: el.scrollWidth,
    client: el.clientWidth,
    overflow: getComputedStyle(el).overflowX,
  }));
  expect(pre.overflow).toBe('auto');
  expect(pre.scroll).toBeGreaterThan(pre.client);

  const copy = block.getByRole('button', { name: 'Copy' });
  await block.hover();
  await copy.click();
  await expect(block.getByRole('button')).toHaveText('Copied');
  expect(await alice.evaluate(() => navigator.clipboard.readText())).toBe(CODE);
  // The feedback goes back after a moment.
  await expect(block.getByRole('button')).toHaveText('Copy', { timeout: 5_000 });
  expectClean(alice);
});

test('typed HTML shows as text and never runs, live and from the server', async ({ browser }) => {
  const script = '<script>window.pwned = 1</script>';
  const img = '<img src=x onerror="window.pwned2 = 1">';
  await post(server, 'general', img);
  const alice = await joinWatched(browser, 'alice');
  const bob = await joinWatched(browser, 'bob');
  await say(alice, script);
  await say(alice, 'hi @bob, see [this](javascript:window.pwned3=1) and *that*');
  for (const page of [alice, bob]) {
    const log = page.getByRole('log');
    await expect(log.locator('li .text', { hasText: 'window.pwned =' })).toHaveText(script);
    await expect(log.locator('li .text', { hasText: 'onerror' })).toHaveText(img);
    await expect(log.locator('img, script')).toHaveCount(0);
    await expect(log.locator('a[href^="javascript"]')).toHaveCount(0);
    await expect(log.locator('em', { hasText: 'that' })).toHaveCount(1);
  }
  // A mention of the viewer stands out; of someone else, less.
  await expect(bob.getByRole('log').locator('.mention.me')).toHaveText('@bob');
  await expect(alice.getByRole('log').locator('.mention')).toHaveText('@bob');
  await expect(alice.getByRole('log').locator('.mention.me')).toHaveCount(0);

  // From the server's page, then hydrated.
  await bob.reload();
  await hydrated(bob);
  const log = bob.getByRole('log');
  await expect(log.locator('li .text', { hasText: 'window.pwned =' })).toHaveText(script);
  await expect(log.locator('.mention.me')).toHaveText('@bob');
  await expect(log.locator('img, script')).toHaveCount(0);
  for (const page of [alice, bob]) {
    expect(await page.evaluate(() => [(window as any).pwned, (window as any).pwned2, (window as any).pwned3])).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expectClean(page);
  }
});

test('formatting shows without JavaScript', async ({ browser }) => {
  await post(server, 'general', '> quoted\n\n- one\n- two\n\n```\ncode\n```\n<b>typed</b>');
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url + '/');
  const text = page.locator('li .text');
  await expect(text.locator('blockquote')).toHaveText('quoted');
  await expect(text.locator('ul li')).toHaveText(['one', 'two']);
  await expect(text.locator('pre code')).toHaveText('code');
  await expect(text.locator('p', { hasText: 'typed' })).toHaveText('<b>typed</b>');
  // The Copy button needs the page live: without it, none shows.
  await expect(text.getByRole('button', { name: 'Copy' })).toHaveCount(0);
});

// Pictures of a formatted conversation, light and dark, to look at:
// CAUSERIE_SHOTS_DIR=/some/dir keeps them.
for (const colorScheme of ['light', 'dark'] as const) {
  test(`a formatted conversation (${colorScheme})`, async ({ browser }) => {
    await post(server, 'general', '# Release notes\nThe **new build** is out, with ~~bugs~~ _fewer_ bugs. See [the notes](https://example.com/notes) or https://example.com/raw');
    await post(server, 'general', 'Steps:\n1. pull\n2. build with `cargo leptos build --release`\n   - check the size\n   - run the tests\n3. ship it');
    await post(server, 'general', '> Did anyone try it on Postgres?\n\nYes, @alice did. @carol too.');
    await post(server, 'general', '```sh\nexport CARGO_TARGET_DIR=/work/target-shared\ncargo leptos build --release && ./target/release/causerie --addr 127.0.0.1:3000 --database sqlite://chat.db\n```');
    await post(server, 'general', '<script>alert("this stays text")</script>');
    const alice = await joinWatched(browser, 'alice', { colorScheme, viewport: { width: 1100, height: 760 } });
    const block = alice.getByRole('log').locator('.codeblock');
    await expect(block).toHaveCount(1);
    // The Copy button shows on hover.
    await block.hover();
    await expect(block.getByRole('button', { name: 'Copy' })).toBeVisible();
    const dir = process.env.CAUSERIE_SHOTS_DIR;
    if (dir) await alice.screenshot({ path: path.join(dir, `markdown-${colorScheme}.png`) });
    expectClean(alice);
  });
}
