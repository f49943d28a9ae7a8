// The server's JSON API (server/src/http/api.rs).
//
// The PWA signs in with `credentials: "omit"`, so the browser does not keep the session cookie
// the server offers: the device token lives only in the encrypted store and in memory while
// unlocked, and every call sends it as `Authorization: Bearer`. A locked or wiped phone
// therefore holds no credential that works without the PIN. The WebSocket gets a single-use
// ticket (`POST /api/sync-ticket`) instead of the cookie.

/** An error answered by the server: `code` is its stable error code. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** The network could not be reached. */
export class NetworkError extends Error {}

async function call(method, path, { token, body, timeoutMs = 20_000 } = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      signal: controller.signal,
    });
  } catch (e) {
    throw new NetworkError(e.name === "AbortError" ? "timed out" : "network unreachable");
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 204) return null;
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (!res.ok) {
    const retry = Number(res.headers.get("retry-after")) || undefined;
    throw new ApiError(res.status, json?.error || `http_${res.status}`, json?.message, retry);
  }
  return json;
}

/**
 * `{token, device_id, user: {username, role}, expires_at}`. With `renewToken` (this phone's
 * expired token) the server renews the same device, so edits made offline meanwhile stay
 * attributed to it.
 */
export async function login(username, password, deviceName, renewToken, probe) {
  const body = { username, password, device_name: deviceName };
  if (renewToken) body.renew_token = renewToken;
  if (probe) body.probe = probe;
  const result = await call("POST", "/api/login", { body });
  // The account is kept as the server names it: an answer without it would lock the phone out.
  if (!result?.token || !result.device_id || !result.user?.username || !result.user?.role) {
    throw new ApiError(502, "bad_answer", "the server's answer to the sign-in is incomplete");
  }
  return result;
}

export function logout(token, timeoutMs) {
  return call("POST", "/api/logout", { token, timeoutMs });
}

export function me(token) {
  return call("GET", "/api/me", { token });
}

/** `{cases: [{id, name}], records: [{id, kind, case, title, status, ...}]}`. */
export function records(token) {
  return call("GET", "/api/records", { token });
}

/** Discards a draft never submitted (its author) or any draft (a coordinator): it is destroyed. */
export function discard(token, id) {
  return call("POST", `/api/records/${encodeURIComponent(id)}/discard`, { token });
}

/** `{ticket, expires_in}`. */
export function syncTicket(token) {
  return call("POST", "/api/sync-ticket", { token });
}

/**
 * `{revoked}`: whether this phone's device was revoked, asked with its probe (a random id kept
 * in the clear, registered at sign-in) while the phone is locked and holds no usable token.
 */
export function probe(probeId) {
  return call("POST", "/api/probe", { body: { probe: probeId }, timeoutMs: 10_000 });
}

/** Tells the server this phone wiped itself (too many wrong PINs): it revokes the device. */
export function probeWiped(probeId) {
  return call("POST", "/api/probe/wiped", { body: { probe: probeId }, timeoutMs: 5_000 });
}
