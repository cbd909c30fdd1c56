// The queue of forms made while the phone was offline (issue 18): kept in IndexedDB with
// the phone's time, sent back online with `client_time` and `X-Offline-Queued: 1`, the
// session's CSRF token asked for first (/offline/token: 401 when the person must sign in
// again, and the queue waits). Shared by the pages (app.js) and the service worker
// (sw.js, Background Sync); one sender at a time (Web Locks), oldest first. The server
// decides whether the phone's time counts (ikn_core.attendance.sent).
const DB = "ikn-workspace";
const STORE = "queue";
export const TAG = "ikn-queue"; // the Background Sync tag and the lock's name

let opened = null;

function database() {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () =>
      request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return opened;
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function store(mode) {
  return (await database()).transaction(STORE, mode).objectStore(STORE);
}

// Keep a form to send later: {url, fields: [[name, value]], clientTime, label, person}
// (who was signed in: sent only in their session, never in another's on a shared phone).
export async function add(item) {
  return done((await store("readwrite")).add(item));
}

export async function all() {
  return done((await store("readonly")).getAll());
}

async function remove(id) {
  return done((await store("readwrite")).delete(id));
}

function two(n) {
  return String(Math.trunc(Math.abs(n))).padStart(2, "0");
}

// The phone's time as ISO 8601 with its offset: 2026-12-07T08:45:00+08:00.
export function phoneTime(date = new Date()) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  return `${day}T${time}${sign}${two(offset / 60)}:${two(offset % 60)}`;
}

function post(item, csrf) {
  const body = new URLSearchParams(item.fields);
  body.set("csrf_token", csrf);
  body.set("client_time", item.clientTime);
  return fetch(item.url, {
    method: "POST",
    body,
    credentials: "same-origin",
    headers: { "X-Offline-Queued": "1" },
  });
}

// Send what waits. `reasonOf(response)`: why a refused one was refused (the page reads
// the answer's notice), or null to keep it for a page to explain. Returns
// {sent, refused: [{...item, reason}], signIn: some wait for a sign-in}; stops at a
// network or server failure.
async function sendEach(reasonOf) {
  const result = { sent: [], refused: [], signIn: false };
  const items = await all();
  if (items.length === 0) return result;
  const answer = await fetch("/offline/token", { credentials: "same-origin", cache: "no-store" });
  if (answer.status === 401) return { ...result, signIn: true };
  if (!answer.ok) return result;
  const { csrf, person } = await answer.json();
  const mine = items.filter((item) => item.person === person);
  if (mine.length < items.length) result.signIn = true; // another's: theirs to send
  for (const item of mine) {
    const response = await post(item, csrf);
    if (response.ok) {
      await remove(item.id);
      result.sent.push(item);
      continue;
    }
    if (response.status >= 500) break;
    const reason = await reasonOf(response);
    if (reason) {
      await remove(item.id);
      result.refused.push({ ...item, reason });
    } else if (response.status === 403) {
      return { ...result, signIn: true };
    }
  }
  return result;
}

export async function sendAll(reasonOf) {
  const run = async () => {
    try {
      return await sendEach(reasonOf);
    } catch {
      return { sent: [], refused: [], signIn: false }; // offline again: it waits
    }
  };
  const locks = globalThis.navigator.locks;
  return locks ? locks.request(TAG, run) : run();
}
