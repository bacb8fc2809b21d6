// The account page's list of devices that get Web Pushes: a subscription
// made over the API (headless Chromium has no push service to subscribe
// with) shows with its browser's name, and "Remove" stops it.
import { test, expect } from '@playwright/test';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Server } from './server';
import { expectNoPageErrors, formReady } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server({});
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

/** A browser's PushSubscription.toJSON(), with a real P-256 key. */
function subscription(endpoint: string) {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x as string, 'base64url'),
    Buffer.from(jwk.y as string, 'base64url'),
  ]);
  return {
    endpoint,
    expirationTime: null,
    keys: { p256dh: point.toString('base64url'), auth: randomBytes(16).toString('base64url') },
  };
}

test('devices that get pushes are listed on the account page and removed from it', async ({ page }) => {
  await page.goto(`${server.url}/register`);
  await formReady(page);
  await page.getByLabel('Name').fill('ann');
  await page.getByLabel(/^Password/).fill('password-of-ann');
  await page.getByRole('button', { name: 'Register' }).click();
  await page.waitForURL(server.url + '/');

  const key = await page.request.get(`${server.url}/api/push/key`);
  expect(key.status()).toBe(200);
  expect(Buffer.from((await key.json()).key, 'base64url').length).toBe(65);

  const refused = await page.request.post(`${server.url}/api/push/subscriptions`, {
    data: subscription('https://127.0.0.1/push'),
  });
  expect(refused.status()).toBe(400);
  expect((await refused.json()).error.message).toContain('public');

  const made = await page.request.post(`${server.url}/api/push/subscriptions`, {
    data: subscription('https://push.example.com/device/1'),
  });
  expect(made.status()).toBe(201);

  await page.goto(`${server.url}/account`);
  // Its buttons are forms: clicked before the page runs, they would post
  // as plain forms.
  await expect(page.locator('ul.devices[data-ready]')).toHaveCount(1);
  const device = page.locator('li.device');
  await expect(device).toHaveCount(1);
  await expect(device.locator('.label')).toHaveText('Chrome on Linux');
  await expect(device).toContainText("hides private rooms' text");
  // This device may show what private rooms say (the person's choice).
  await device.getByRole('button', { name: 'Show text' }).click();
  await expect(device).toContainText("shows private rooms' text");
  const shown = await page.request.get(`${server.url}/api/push/subscriptions`);
  expect((await shown.json()).subscriptions[0].previews).toBe(true);
  await device.getByRole('button', { name: 'Hide text' }).click();
  await expect(device).toContainText("hides private rooms' text");
  await device.getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByTestId('no-devices')).toBeVisible();
  const list = await page.request.get(`${server.url}/api/push/subscriptions`);
  expect((await list.json()).subscriptions).toEqual([]);
  expectNoPageErrors(page);
});
