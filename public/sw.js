// THOR Lab's service worker: every file the app serves itself (pages, scripts, the model, Pyodide,
// the Python bundle) is kept as it is fetched, and served from that copy when the network is gone,
// so a lab that was open once opens and works offline. Online, the network always answers first,
// so a new build is picked up at once. Plain JavaScript: it is served as is from public/.
const CACHE = 'thor-lab';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin || request.headers.has('range')) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(request);
        // Stored in the background: the page gets the response (and streams it) at once.
        if (response.ok) event.waitUntil(cache.put(request, response.clone()));
        return response;
      } catch (error) {
        // Kept copies answer whatever headers a request varies on (a module script sends Origin).
        const kept = await cache.match(request, { ignoreSearch: request.mode === 'navigate', ignoreVary: true });
        if (kept) return kept;
        throw error;
      }
    })(),
  );
});

// {keep: [urls]}: files loaded before this worker took charge, fetched again (from the HTTP cache
// where possible) and kept here, off the page's thread; the reply on the port says how many.
self.addEventListener('message', (event) => {
  const urls = event.data && event.data.keep;
  if (!Array.isArray(urls)) return;
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const kept = await Promise.all(
        urls.map(async (url) => {
          try {
            const response = await fetch(url, { cache: 'force-cache' });
            if (!response.ok) return false;
            await cache.put(url, response);
            return true;
          } catch {
            return false;
          }
        }),
      );
      if (event.ports[0]) event.ports[0].postMessage({ kept: kept.filter(Boolean).length });
    })(),
  );
});
