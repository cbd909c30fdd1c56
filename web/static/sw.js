// The service worker (issue 18). web/pwa.py serves it at /sw.js (its scope: every page)
// after a head naming this version: the import of queue.js, SHELL (what to keep, their
// digests in their addresses) and VERSION. Static files: from the cache first; pages:
// the network first, else the offline page; a queue of forms made offline: sent on
// Background Sync where the browser has it (the pages send it on `online` too).
const CACHE = `ikn-shell-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  const old = (keys) => keys.filter((key) => key.startsWith("ikn-shell-") && key !== CACHE);
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(old(keys).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

async function offlinePage() {
  return (await caches.match("/offline")) || Response.error();
}

async function cacheFirst(request) {
  const hit = await caches.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && new URL(request.url).searchParams.has("v")) {
    const cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(offlinePage));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(cacheFirst(request));
  }
});

self.addEventListener("message", (event) => {
  if (event.data === "refresh-offline") {
    // the offline page again, in the language the person now uses
    event.waitUntil(caches.open(CACHE).then((cache) => cache.add("/offline")));
  }
});

async function tellPages(result) {
  if (result.sent.length === 0) return;
  for (const client of await self.clients.matchAll({ type: "window" })) {
    client.postMessage("queue-sent");
  }
}

self.addEventListener("sync", (event) => {
  if (event.tag === TAG) {
    // a refusal is left for a page to explain (it reads the answer's notice)
    event.waitUntil(sendAll(async () => null).then(tellPages));
  }
});
