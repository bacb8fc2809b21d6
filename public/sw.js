// Causerie's service worker: keeps the app's static files and the chat
// pages last loaded for when the network is slow or gone (a page loaded
// offline shows what was not sent yet, and sends it once back), and shows
// the notifications pushed to it.
'use strict';

const CACHE = 'causerie-static-v1';
const PAGES = 'causerie-pages-v1';
const KEPT = [CACHE, PAGES];

/** The chat's pages, `/` and `/r/{room}`: the ones worth having offline. */
function isChatPage(url) {
  return url.origin === self.location.origin && (url.pathname === '/' || /^\/r\/[^/]+$/.test(url.pathname));
}

/** Keeps a page as it came, headers (its Content-Security-Policy) and all. */
function keepPage(request, res) {
  if (!res.ok || res.redirected || res.type !== 'basic') return Promise.resolve();
  const copy = res.clone();
  return caches.open(PAGES).then((cache) => cache.put(request, copy));
}
const STATIC = [
  '/pkg/causerie.js',
  '/pkg/causerie.wasm',
  '/pkg/causerie.css',
  '/favicon.svg',
  '/manifest.webmanifest',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/maskable-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(STATIC))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => !KEPT.includes(k)).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
      // The pages open now were loaded before this worker: keep them too.
      .then(() => self.clients.matchAll({ type: 'window' }))
      .then((list) =>
        Promise.all(
          list
            .map((c) => new URL(c.url))
            .filter(isChatPage)
            .map((url) =>
              fetch(url.href, { credentials: 'same-origin' })
                .then((res) => keepPage(new Request(url.href), res))
                .catch(() => undefined),
            ),
        ),
      ),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (event.request.mode === 'navigate' && isChatPage(url)) {
    // Network first: the page is the conversation as it stands. Offline,
    // the copy kept last time, which the app brings up to date once back.
    event.respondWith(
      fetch(event.request)
        .then((res) => {
          event.waitUntil(keepPage(event.request, res));
          return res;
        })
        .catch(() =>
          caches
            .open(PAGES)
            .then((cache) => cache.match(event.request, { ignoreSearch: true }))
            .then((hit) => hit || Response.error()),
        ),
    );
    return;
  }
  if (!STATIC.includes(url.pathname)) return;
  // Network first: a new version's files must match its pages. The kept
  // copy answers when the network fails.
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(event.request, copy)));
        }
        return res;
      })
      .catch(() => caches.match(event.request).then((hit) => hit || Response.error())),
  );
});

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (_) {
    data = { body: event.data ? event.data.text() : '' };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || 'Causerie', {
      body: data.body || '',
      tag: data.room || undefined,
      icon: '/icons/icon-192.png',
      data: { url: data.url || '/' },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || '/', self.location.origin);
  if (url.origin !== self.location.origin) return;
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
      for (const client of list) {
        if (new URL(client.url).origin === self.location.origin && 'focus' in client) {
          return client.navigate(url.href).then((c) => (c || client).focus());
        }
      }
      return self.clients.openWindow(url.href);
    }),
  );
});
