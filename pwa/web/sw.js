// Saksi's service worker: keeps the app shell and the wasm module so the app starts with no
// network. It never stores records: they live encrypted in IndexedDB, which an update of the
// app does not touch, so an update never strands unsynced data.
//
// - install: caches every shell file in a cache named after VERSION (all or nothing).
// - activate: deletes the caches of older versions. A new version waits until no page of the
//   old one is open, or until the user taps "Restart" (the page first saves everything);
//   it never reloads a page by itself.
// - fetch: the shell from the cache (navigations get index.html); /api/ and /sync always go
//   to the network and are never cached.
//
// VERSION is a hash of the files under pwa/web/ (sw.js excepted), written by
// `node pwa/tools/stamp-sw.mjs`; a test fails when it is stale.

const VERSION = "b256b7d88d76a73a";
const CACHE = `saksi-shell-${VERSION}`;
const SHELL = [
  "/",
  "/index.html",
  "/manifest.webmanifest",
  "/css/app.css",
  "/js/api.js",
  "/js/app.js",
  "/js/dom.js",
  "/js/editor.js",
  "/js/files.js",
  "/js/i18n.js",
  "/js/screens.js",
  "/js/store.js",
  "/js/sync.js",
  "/js/kdf-worker.js",
  "/icons/icon-192.png",
  "/icons/icon-512.png",
  "/pkg/saksi_wasm.js",
  "/pkg/saksi_wasm_bg.wasm",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" })))),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("saksi-shell-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "skip-waiting") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname === "/sync" || url.pathname.startsWith("/console")) return;
  if (request.mode === "navigate") {
    event.respondWith(
      caches.open(CACHE).then(async (cache) => (await cache.match("/index.html")) || fetch(request)),
    );
    return;
  }
  event.respondWith(
    caches.open(CACHE).then(async (cache) => (await cache.match(url.pathname)) || fetch(request)),
  );
});
