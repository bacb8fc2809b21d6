// Renders the app icons (public/icons) from public/favicon.svg with Chromium:
// NODE_PATH=end2end/node_modules node scripts/make-icons.js
const { chromium } = require('@playwright/test');
const fs = require('fs');
const svg = fs.readFileSync('public/favicon.svg', 'utf8');
const bubble = '<path d="M16 20a6 6 0 0 1 6-6h20a6 6 0 0 1 6 6v14a6 6 0 0 1-6 6H30l-9 8v-8h0a6 6 0 0 1-5-6z" fill="#fff"/>';
// Maskable: the whole square is background; the bubble sits in the middle 60% (the safe zone is 80%).
const maskable = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" fill="#4f46e5"/><g transform="translate(32 32) scale(0.75) translate(-32 -31)">${bubble}</g></svg>`;
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  for (const [name, src, size] of [['icon-192.png', svg, 192], ['icon-512.png', svg, 512], ['maskable-512.png', maskable, 512]]) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    await page.setContent(`<html><body style="margin:0;background:transparent">${src.replace('<svg ', `<svg width="${size}" height="${size}" `)}</body></html>`);
    await page.screenshot({ path: `public/icons/${name}`, omitBackground: true });
    await page.close();
  }
  await browser.close();
})();
