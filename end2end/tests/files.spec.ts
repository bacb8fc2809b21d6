// Files and images (issue 17): a pasted screenshot becomes a thumbnail
// sized before it loads, opening a viewer; a PDF picked with the attach
// button becomes a card whose download gives the same bytes; a file of a
// private room does not exist for someone outside it; files dropped on the
// conversation are attached; a guest's upload shows the server's refusal.
import { readFileSync } from 'node:fs';
import { test, expect, Browser, Page } from '@playwright/test';
import { Server } from './server';
import { accountDevice, expectNoPageErrors, joinAs } from './helpers';

let server: Server;

// Accounts register (argon2 each) on a machine of two cores.
test.describe.configure({ timeout: 120_000 });

test.beforeEach(async () => {
  server = new Server();
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

function account(browser: Browser, name: string): Promise<Page> {
  return accountDevice(browser, server, name, `password-of-${name}`, 'register');
}

/** Pastes PNG images drawn in the page into the message box, as a
 * screenshot from the clipboard comes. */
async function pasteImages(page: Page, images: { name: string; width: number; height: number }[]) {
  await page.evaluate(async (list) => {
    const dt = new DataTransfer();
    for (const { name, width, height } of list) {
      const canvas = new OffscreenCanvas(width, height);
      const g = canvas.getContext('2d')!;
      g.fillStyle = '#4f46e5';
      g.fillRect(0, 0, width, height);
      g.fillStyle = '#ffffff';
      g.fillRect(width / 4, height / 4, width / 2, height / 2);
      const blob = await canvas.convertToBlob({ type: 'image/png' });
      dt.items.add(new File([blob], name, { type: 'image/png' }));
    }
    const box = document.querySelector('#message')!;
    box.dispatchEvent(
      new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }),
    );
  }, images);
}

/** Picks files with the composer's attach button. */
async function attach(page: Page, files: { name: string; mimeType: string; buffer: Buffer }[]) {
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.getByRole('button', { name: 'Attach files' }).click(),
  ]);
  expect(chooser.isMultiple()).toBe(true);
  await chooser.setFiles(files);
}

/** Waits until every chip's upload finished, with the send button on. */
async function uploaded(page: Page, n: number) {
  await expect(page.locator('.uploads .upload')).toHaveCount(n);
  await expect(page.getByRole('progressbar')).toHaveCount(0);
  await expect(page.locator('.upload-error')).toHaveCount(0);
  await expect(page.locator('.uploads .upload-size')).toHaveCount(n);
  await expect(page.getByRole('button', { name: 'Send' })).toBeEnabled();
}

const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
    '2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n' +
    'trailer << /Root 1 0 R >>\n%%EOF\n',
);

test('a pasted screenshot shows as a thumbnail and opens in the viewer', async ({ browser }) => {
  const alice = await account(browser, 'alice');
  await pasteImages(alice, [
    { name: 'first.png', width: 640, height: 480 },
    { name: 'second.png', width: 300, height: 600 },
  ]);
  await uploaded(alice, 2);
  await expect(alice.locator('.uploads')).toContainText('first.png');
  // The chips preview the images from the page's own copy (a blob: URL the
  // page's policy lets through).
  await expect
    .poll(() => alice.locator('.upload-thumb').first().evaluate((img: HTMLImageElement) => img.naturalWidth))
    .toBe(640);
  // No caption needed: Enter sends the files alone.
  await alice.locator('#message').press('Enter');
  await expect(alice.locator('.uploads')).toHaveCount(0);

  // Sized before they load: 640×480 fits 360×270, 300×600 fits 135×270.
  const thumbs = alice.getByRole('log').locator('li:not(.pending) .thumb');
  await expect(thumbs).toHaveCount(2);
  const first = thumbs.nth(0).locator('img');
  await expect(first).toHaveAttribute('width', '360');
  await expect(first).toHaveAttribute('height', '270');
  await expect(first).toHaveAttribute('alt', 'first.png');
  await expect(first).toHaveAttribute('loading', 'lazy');
  await expect(first).toHaveAttribute('src', /^\/files\/[0-9a-f]{64}\/thumb$/);
  await expect(thumbs.nth(1).locator('img')).toHaveAttribute('width', '135');
  await expect(thumbs.nth(1).locator('img')).toHaveAttribute('height', '270');
  await expect
    .poll(() => first.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0))
    .toBe(true);

  // The viewer: the full image, its name, a download link; Left/Right step.
  await thumbs.nth(0).click();
  const dialog = alice.getByRole('dialog', { name: 'first.png' });
  await expect(dialog).toBeVisible();
  const full = dialog.getByRole('img', { name: 'first.png' });
  await expect(full).toHaveAttribute('src', /^\/files\/[0-9a-f]{64}\/first\.png$/);
  await expect
    .poll(() => full.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth))
    .toBe(640);
  await expect(dialog.getByRole('link', { name: 'Download' })).toHaveAttribute('download', 'first.png');
  await expect(dialog).toContainText('1 of 2');
  await alice.keyboard.press('ArrowRight');
  await expect(alice.getByRole('dialog', { name: 'second.png' })).toBeVisible();
  await expect(alice.getByRole('dialog')).toContainText('2 of 2');
  await alice.keyboard.press('ArrowLeft');
  await expect(dialog).toBeVisible();
  // The buttons step too, and say where the ends are.
  await expect(dialog.getByRole('button', { name: 'Previous image' })).toBeDisabled();
  await dialog.getByRole('button', { name: 'Next image' }).click();
  const second = alice.getByRole('dialog', { name: 'second.png' });
  await expect(second.getByRole('button', { name: 'Next image' })).toBeDisabled();
  await expect(second.getByRole('button', { name: 'Next image' })).toHaveText('›');
  await second.getByRole('button', { name: 'Previous image' }).click();
  await expect(dialog).toBeVisible();

  // Escape closes it; the focus is back on the thumbnail.
  await alice.keyboard.press('Escape');
  await expect(alice.getByRole('dialog')).toHaveCount(0);
  await expect(thumbs.nth(0)).toBeFocused();

  // After a reload the files are still there, from history.
  await alice.reload();
  await expect(alice.getByRole('log').locator('.thumb img')).toHaveCount(2);
  expectNoPageErrors(alice);
});

test('a PDF picked with the attach button downloads with the same bytes', async ({ browser }) => {
  const alice = await account(browser, 'alice');
  await attach(alice, [{ name: 'report.pdf', mimeType: 'application/pdf', buffer: PDF }]);
  await uploaded(alice, 1);
  await alice.locator('#message').fill('the quarterly report');
  await alice.locator('#message').press('Enter');

  const row = alice.getByRole('log').locator('li', { hasText: 'the quarterly report' });
  const card = row.locator('.file-card');
  await expect(card).toBeVisible();
  await expect(card).toContainText('report.pdf');
  await expect(card).toContainText(new RegExp(`${PDF.length}\\sB`));
  await expect(card).toContainText('application/pdf');
  await expect(row.locator('.thumb')).toHaveCount(0);

  const [download] = await Promise.all([
    alice.waitForEvent('download'),
    card.getByRole('link', { name: 'Download report.pdf' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('report.pdf');
  expect(readFileSync(await download.path()).equals(PDF)).toBe(true);
  expectNoPageErrors(alice);
});

test("a private room's file does not exist for someone outside it", async ({ browser }) => {
  const alice = await account(browser, 'alice');
  const bob = await account(browser, 'bob');

  await alice.getByRole('button', { name: 'New private room' }).click();
  const dialog = alice.getByRole('dialog', { name: 'New private room' });
  await dialog.getByLabel('Name').fill('secret');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await alice.waitForURL(server.url + '/r/~secret');

  const secret = Buffer.from('the launch is on Tuesday\n');
  await attach(alice, [{ name: 'secret.txt', mimeType: 'text/plain', buffer: secret }]);
  await uploaded(alice, 1);
  await alice.locator('#message').fill('for our eyes only');
  await alice.locator('#message').press('Enter');
  const link = alice
    .getByRole('log')
    .locator('li:not(.pending)', { hasText: 'for our eyes only' })
    .getByRole('link', { name: 'Download secret.txt' });
  const href = await link.getAttribute('href');
  expect(href).toMatch(/^\/files\/[0-9a-f]{64}\/secret\.txt$/);

  const mine = await alice.request.get(server.url + href);
  expect(mine.status()).toBe(200);
  expect((await mine.body()).equals(secret)).toBe(true);
  // bob is signed in, but not a member: the file does not exist for him.
  const theirs = await bob.request.get(server.url + href);
  expect(theirs.status()).toBe(404);
  expect((await theirs.body()).includes('Tuesday')).toBe(false);
  expectNoPageErrors(alice);
  expectNoPageErrors(bob);
});

test('files dropped on the conversation are attached', async ({ browser }) => {
  const alice = await account(browser, 'alice');
  const dt = await alice.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File(['one\n'], 'notes.txt', { type: 'text/plain' }));
    d.items.add(new File(['two\n'], 'more-notes.txt', { type: 'text/plain' }));
    return d;
  });
  await alice.locator('.conversation').dispatchEvent('dragenter', { dataTransfer: dt });
  const overlay = alice.locator('.drop-overlay');
  await expect(overlay).toHaveText('Drop files to share');
  await overlay.dispatchEvent('dragover', { dataTransfer: dt });
  await overlay.dispatchEvent('drop', { dataTransfer: dt });
  await expect(overlay).toHaveCount(0);
  await uploaded(alice, 2);

  // One removed before sending goes no further.
  await alice.getByRole('button', { name: 'Remove more-notes.txt' }).click();
  await expect(alice.locator('.uploads .upload')).toHaveCount(1);
  await alice.locator('#message').fill('dropped');
  await alice.getByRole('button', { name: 'Send' }).click();
  const row = alice.getByRole('log').locator('li:not(.pending)', { hasText: 'dropped' });
  await expect(row.locator('.file-card')).toHaveCount(1);
  await expect(row.locator('.file-card')).toContainText('notes.txt');

  // Dragging text (not files) shows no overlay.
  const text = await alice.evaluateHandle(() => {
    const d = new DataTransfer();
    d.setData('text/plain', 'just words');
    return d;
  });
  await alice.locator('.conversation').dispatchEvent('dragenter', { dataTransfer: text });
  await expect(overlay).toHaveCount(0);
  expectNoPageErrors(alice);
});

test("a guest's upload shows the server's refusal and can be removed", async ({ browser }) => {
  const guest = await joinAs(browser, server, 'visitor');
  // Only accounts share files: no attach button for a guest.
  await expect(guest.getByRole('button', { name: 'Attach files' })).toHaveCount(0);
  await pasteImages(guest, [{ name: 'shot.png', width: 20, height: 20 }]);
  const refusal = guest.locator('.uploads .upload-error');
  await expect(refusal).toBeVisible();
  await expect(refusal).toHaveAttribute('role', 'alert');
  await expect(refusal).not.toHaveText('');
  // Nothing to send: no text, no stored file.
  await expect(guest.getByRole('button', { name: 'Send' })).toBeDisabled();
  await guest.getByRole('button', { name: 'Remove shot.png' }).click();
  await expect(guest.locator('.uploads')).toHaveCount(0);
  expectNoPageErrors(guest);
});
