// Retrace's service worker (written by tools/finish-dist.mjs at build time).
// One cache per build version holds every file of that build: the app is
// served from it first, so after one visit it loads with no network, and a
// page never mixes files of two versions. A new version installs beside the
// running one and waits until the page asks it to take over.
const VERSION = '__VERSION__';
const FILES = ['__FILES__'];
const CACHE = `retrace-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('retrace-') && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data === 'skip-waiting') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(request, { ignoreSearch: true });
    return hit ?? fetch(request);
  })());
});
