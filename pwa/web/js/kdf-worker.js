// The PIN key, derived in a worker: Argon2id (in the wasm module) takes ARGON2_MEMORY_KIB of
// memory, which the page gets back when the worker ends (a page's wasm memory never shrinks).
// One message in ({secret, salt, memoryKib, passes}), one out ({key} or {error}).

import init, { argon2id } from "/pkg/saksi_wasm.js";

addEventListener("message", async (event) => {
  const { secret, salt, memoryKib, passes } = event.data;
  try {
    await init();
    const started = performance.now();
    const key = argon2id(secret, salt, memoryKib, passes);
    secret.fill(0);
    postMessage({ key, ms: performance.now() - started }, [key.buffer]);
  } catch (e) {
    postMessage({ error: String(e?.message || e) });
  }
});
