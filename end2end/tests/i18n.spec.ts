import { test, expect } from '@playwright/test';
import { Server } from './server';
import { BOT, joinAs, open, say, post, expectNoPageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('a French browser gets the French page, from the server on', async ({ browser }) => {
  await post(server, 'general', 'bonjour');
  // Without JavaScript: the server chose French from Accept-Language.
  const nojs = await browser.newContext({ locale: 'fr-FR', javaScriptEnabled: false });
  const raw = await nojs.newPage();
  await raw.goto(server.url + '/');
  await expect(raw.locator('html')).toHaveAttribute('lang', 'fr');
  await expect(raw.locator('#rooms-title')).toHaveText('Salons');
  await expect(raw.locator('label[for=nickname]')).toHaveText('Choisissez un pseudo pour rejoindre la conversation');
  await expect(raw.locator('.online-count')).toHaveText('0 en ligne');
  await nojs.close();

  // With JavaScript: the same page, then live in French.
  const page = await open(browser, server, '/', { locale: 'fr-FR' });
  await expect(page.locator('html')).toHaveAttribute('lang', 'fr');
  await page.getByLabel(/pseudo/).fill('amélie');
  await page.getByRole('button', { name: 'Entrer' }).click();
  await expect(page.getByTestId('status')).toHaveText('Connecté');
  await expect(page.locator('#message')).toHaveAttribute('placeholder', 'Écrire dans #general');
  await expect(page.getByRole('button', { name: 'Envoyer' })).toBeVisible();
  await expect(page.locator('.online-count')).toHaveText('1 en ligne');
  await expect(page.getByRole('log')).toHaveAttribute('aria-label', 'Messages dans #general');
  await expect(page.locator('.day').first()).toHaveText("Aujourd’hui");
  await say(page, 'salut');
  await expect(page.getByRole('log')).toContainText('salut');
  await expect(page.locator('.people-list .you')).toHaveText('(vous)');
  expectNoPageErrors(page);
});

test('the language switch changes every string and is remembered by the server', async ({ browser }) => {
  const page = await joinAs(browser, server, 'zoe', '/', { locale: 'fr-FR' });
  await expect(page.locator('#rooms-title')).toHaveText('Salons');
  await page.getByLabel('Langue').selectOption('en');
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.locator('#rooms-title')).toHaveText('Rooms');
  await expect(page.getByTestId('status')).toHaveText('Connected');
  await expect(page.locator('#message')).toHaveAttribute('placeholder', 'Message #general');
  const cookies = await page.context().cookies();
  expect(cookies.find((c) => c.name === 'causerie_lang')?.value).toBe('en');

  // The cookie wins over the browser's language, in the server's render too.
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.locator('#rooms-title')).toHaveText('Rooms');
  await expect(page.getByTestId('status')).toHaveText('Connected');

  await page.getByLabel('Language').selectOption('fr');
  await expect(page.locator('#rooms-title')).toHaveText('Salons');
  await expect(page.getByTestId('status')).toHaveText('Connecté');
  expectNoPageErrors(page);
});

test('an English browser stays in English', async ({ browser }) => {
  const page = await open(browser, server, '/', { locale: 'en-GB' });
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.getByRole('button', { name: 'Join chat' })).toBeVisible();
});
