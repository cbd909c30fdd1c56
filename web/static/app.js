// The pages as an app (issue 18): registers the service worker, keeps a form marked
// data-offline="queue" on this phone when the network is away (the person is told),
// sends what waits when the network is back, and lists it on the offline page. The
// words come from the page (#offline-note's data-*), the rules from the server.
const queue = await import(document.querySelector('meta[name="ikn-queue"]').content);
const note = document.getElementById("offline-note");
const NOTE_KEY = "ikn-offline-note"; // a note to show after the reload that shows the result
const LANG_KEY = "ikn-offline-lang"; // the language of the offline page kept

function say(text) {
  if (note) note.textContent = text;
}

async function reasonOf(response) {
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const refused = page.querySelector(".notice-refused");
  return refused ? refused.textContent.replace(/\s+/g, " ").trim() : null;
}

function reload(text) {
  sessionStorage.setItem(NOTE_KEY, text);
  location.reload();
}

async function send() {
  if (!navigator.onLine || note === null) return;
  const result = await queue.sendAll(reasonOf);
  const refused = result.refused.map((item) => `${item.label}: ${item.reason}`);
  const waiting = result.signIn ? [note.dataset.signIn] : [];
  if (result.sent.length > 0) {
    reload([note.dataset.sent, ...refused, ...waiting].join(" "));
  } else if (result.signIn) {
    say([...refused, ...waiting].join(" "));
  } else if (refused.length > 0) {
    say(refused.join(" "));
  }
  await listQueue();
}

async function askForSync() {
  const registration = await navigator.serviceWorker?.getRegistration();
  await registration?.sync?.register(queue.TAG).catch(() => {});
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.dataset.offline !== "queue" || navigator.onLine) return;
  event.preventDefault();
  const fields = [...new FormData(form, event.submitter)].filter(
    ([name, value]) => name !== "csrf_token" && typeof value === "string",
  );
  const label = form.dataset.offlineLabel || document.title;
  const person = note.dataset.person;
  await queue.add({ url: form.action, fields, clientTime: queue.phoneTime(), label, person });
  say(note.dataset.queued);
  await askForSync();
});

async function listQueue() {
  const list = document.getElementById("offline-queue");
  if (list === null) return;
  const lang = document.documentElement.lang;
  const items = await queue.all();
  list.replaceChildren(
    ...items.map((item) => {
      const row = document.createElement("li");
      const at = new Date(item.clientTime);
      const time = at.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
      row.textContent = `${item.label} (${list.dataset.at} ${time})`;
      return row;
    }),
  );
  document.getElementById("offline-queue-empty").hidden = items.length > 0;
}

async function keepOfflinePage() {
  const lang = document.documentElement.lang;
  const worker = navigator.serviceWorker?.controller;
  if (worker && navigator.onLine && localStorage.getItem(LANG_KEY) !== lang) {
    worker.postMessage("refresh-offline");
    localStorage.setItem(LANG_KEY, lang);
  }
}

// A button data-copy="<id>" copies that field's text (the calendar address), and says so.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (button === null) return;
  const field = document.getElementById(button.dataset.copy);
  field.select();
  await navigator.clipboard?.writeText(field.value).catch(() => {});
  button.textContent = button.dataset.copied;
});

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { type: "module", scope: "/" }).catch(() => {});
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data === "queue-sent" && note) reload(note.dataset.sent);
  });
}
window.addEventListener("online", send);
const earlier = sessionStorage.getItem(NOTE_KEY);
if (earlier) {
  sessionStorage.removeItem(NOTE_KEY);
  say(earlier);
}
await listQueue();
await keepOfflinePage();
await send();
