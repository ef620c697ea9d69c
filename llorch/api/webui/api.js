// Every call to llorchd goes through here, with the token of this tab. EventSource cannot send
// an Authorization header, so server-sent events are read from fetch()'s body stream instead
// (the token never goes into a URL, where logs and history would keep it).
import { parseEvents } from "/ui/sse.js";

const TOKEN_KEY = "llorch.token";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  known: () => sessionStorage.getItem(TOKEN_KEY) !== null,
  remember: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const code = body?.code ?? `HTTP ${status}`;
    super(`${body?.message ?? "the server answered without a message"} (${code})`);
    this.status = status;
    this.code = code;
  }

  get unauthorized() {
    return this.status === 401 || this.status === 403;
  }
}

function headers(extra = {}) {
  const all = new Headers(extra);
  const token = session.token();
  if (token) all.set("Authorization", `Bearer ${token}`);
  return all;
}

async function failure(resp) {
  const body = await resp.json().catch(() => null);
  return new ApiError(resp.status, body);
}

export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const resp = await fetch(path, init);
  if (!resp.ok) throw await failure(resp);
  return resp.status === 204 ? null : resp.json();
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

// Reads one SSE response to its end: `onFrame({event, data, id})` for each frame. Resolves with
// the last frame id seen (where a reconnect resumes), rejects with ApiError before the stream.
export async function stream(path, onFrame, { signal, lastEventId } = {}) {
  const extra = { Accept: "text/event-stream" };
  if (lastEventId) extra["Last-Event-ID"] = lastEventId;
  const resp = await fetch(path, { headers: headers(extra), signal, cache: "no-store" });
  if (!resp.ok) throw await failure(resp);
  let last = lastEventId ?? null;
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  const parse = parseEvents((frame) => {
    if (frame.id !== null) last = frame.id;
    onFrame(frame);
  });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    parse(value);
  }
}

// A watch (`?watch=true`) followed for as long as the page lives: it reconnects after a dropped
// connection and resumes from the last resource version it saw. A refused token ends it.
export function follow(path, onFrame, { onState = () => {}, onDenied = () => {} } = {}) {
  let lastEventId = null;
  const controller = new AbortController();
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        onState("live");
        lastEventId = await stream(path, onFrame, { signal: controller.signal, lastEventId });
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.unauthorized) {
          onDenied(error);
          return;
        }
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  run();
  return () => controller.abort();
}

// Calls `load` now and every `ms` until the returned function is called; a refused token stops it.
export function poll(load, ms, { onError = () => {}, onDenied = () => {} } = {}) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try {
      await load();
    } catch (error) {
      if (error instanceof ApiError && error.unauthorized) {
        onDenied(error);
        return;
      }
      onError(error);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
