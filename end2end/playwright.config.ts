import { defineConfig } from '@playwright/test';

// Debian's Chromium: browsers are never downloaded (no `playwright install`).
export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  // One retry, reported as "flaky": in two of three full runs one page's
  // load never completed (no load event; the page stayed server-rendered
  // and unhydrated) until the test timed out. Not reproduced in 35 runs of
  // those tests alone; an open bug, see docs/TESTING.md.
  retries: 1,
  reporter: [['list']],
  use: {
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
