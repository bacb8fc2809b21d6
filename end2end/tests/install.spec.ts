// The installable app: a web app manifest with its icons, a service worker
// that takes control of the page and answers for the app's files when the
// network is gone, and Chromium's own word that the app can be installed.
import { test, expect } from '@playwright/test';
import { Server } from './server';
import { open, expectNoPageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server();
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

/** The width and height a PNG's header gives. */
function pngSize(bytes: Buffer): [number, number] {
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

test('the app is installable and its files are kept by its service worker', async ({ browser }) => {
  const page = await open(browser, server, '/');

  // The page names its manifest, which names real icons of the sizes it says.
  const href = await page.locator('link[rel=manifest]').getAttribute('href');
  const res = await page.request.get(server.url + href);
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toContain('application/manifest+json');
  const manifest = await res.json();
  expect(manifest).toMatchObject({ name: 'Causerie', start_url: '/', display: 'standalone' });
  const purposes = new Set<string>();
  for (const icon of manifest.icons.filter((i: any) => i.type === 'image/png')) {
    const r = await page.request.get(server.url + icon.src);
    expect(r.status(), icon.src).toBe(200);
    expect(r.headers()['content-type']).toBe('image/png');
    const [w, h] = pngSize(await r.body());
    expect(`${w}x${h}`).toBe(icon.sizes);
    purposes.add(icon.purpose);
  }
  expect([...purposes].sort()).toEqual(['any', 'maskable']);

  // The worker registers and controls the page without a reload.
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15_000 });
  const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  expect(scope).toBe(server.url + '/');

  // Chromium finds nothing missing for an install. (A test's browser
  // context is an incognito one, which Chromium never installs from: that
  // is the browser's say, not the app's.)
  const cdp = await page.context().newCDPSession(page);
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  expect(installabilityErrors.filter((e: any) => e.errorId !== 'in-incognito')).toEqual([]);

  // Offline, the worker answers for the app's files.
  await page.context().setOffline(true);
  const kept = await page.evaluate(async () => {
    const files = ['/pkg/causerie.js', '/pkg/causerie.wasm', '/pkg/causerie.css', '/icons/icon-192.png'];
    return Promise.all(files.map(async (f) => (await fetch(f)).status));
  });
  expect(kept).toEqual([200, 200, 200, 200]);
  await page.context().setOffline(false);
  expectNoPageErrors(page);
});
