// The live floor map (/console/floor): the server's desk events (JSON over SSE, the
// same feed as the API's stream) recolour the existing SVG nodes in place. The state,
// its words and its mark all come from the server: nothing is decided here. The
// EventSource resumes by itself with Last-Event-ID after a drop; #live-status says
// how fresh the map is (live_stream.js: lost once away 4 s). Each <time data-age>
// shows its fact's age, kept current.

import { openStream } from "./live_stream.js";

const status = document.getElementById("live-status");
const plan = document.querySelector("svg.live-plan");
const lang = document.documentElement.lang || "id";
const ages = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
// the building's clock, as the server writes it: 08.30.05 WITA
const clock = new Intl.DateTimeFormat(lang, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  timeZone: status?.dataset.tz,
});
const inBuilding = (moment) => `${clock.format(moment)} ${status.dataset.tzname}`;
let lastChange = null;

function ageText(iso) {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (Math.abs(seconds) < 60) return ages.format(seconds, "second");
  if (Math.abs(seconds) < 3600) return ages.format(Math.round(seconds / 60), "minute");
  if (Math.abs(seconds) < 86400) return ages.format(Math.round(seconds / 3600), "hour");
  return ages.format(Math.round(seconds / 86400), "day");
}

function showAge(node) {
  if (!node.dataset.clock) node.dataset.clock = node.textContent;
  node.textContent = `${node.dataset.clock} (${ageText(node.getAttribute("datetime"))})`;
}

function setTime(cell, iso, text) {
  if (!cell) return;
  if (!iso) {
    cell.textContent = "–";
    return;
  }
  const node = document.createElement("time");
  node.setAttribute("datetime", iso);
  node.dataset.age = "";
  node.dataset.clock = text;
  cell.replaceChildren(node);
  showAge(node);
}

function live(text) {
  status.textContent = text;
}

function showFresh() {
  const when = lastChange ? inBuilding(lastChange) : status.dataset.none;
  live(`${status.dataset.live} ${when}`);
}

function count(state, step) {
  const node = document.querySelector(`[data-count="${state}"]`);
  if (node) node.textContent = String(Number(node.textContent) + step);
}

function apply(event) {
  const desk = plan?.querySelector(`[data-desk="${CSS.escape(event.desk)}"]`);
  if (desk) {
    const before = desk.dataset.state;
    if (before !== event.state) {
      desk.classList.replace(`live-${before}`, `live-${event.state}`);
      count(before, -1);
      count(event.state, 1);
    }
    desk.dataset.state = event.state;
    desk.setAttribute("aria-label", event.aria);
    desk.querySelector(".plan-mark").setAttribute("d", event.mark);
  }
  const row = document.querySelector(`[data-desk-row="${CSS.escape(event.desk)}"]`);
  if (row) {
    row.querySelector('[data-field="state"]').textContent = event.label;
    setTime(row.querySelector('[data-field="since"]'), event.since, event.since_text);
    setTime(row.querySelector('[data-field="reported_at"]'), event.reported_at, event.reported_text);
  }
  const zone = document.querySelector(`[data-zone="${CSS.escape(event.zone.id)}"]`);
  if (zone) {
    const people = event.zone.people;
    zone.querySelector('[data-field="people"]').textContent = people === null ? "–" : String(people);
    zone.querySelector('[data-field="desks"]').textContent = String(event.zone.desks);
    setTime(zone.querySelector('[data-field="reported_at"]'), event.zone.reported_at, event.zone.reported_text);
  }
  if (!event.refresh) lastChange = new Date(); // a refresh: the state as it is, no change
  showFresh();
  performance.mark(`desk-${event.desk}-${event.state}`);
}

if (status) {
  live(status.dataset.connecting);
  openStream(status.dataset.stream, {
    onLive: showFresh,
    onLost: () => live(status.dataset.lost),
    onMessage: apply,
  });
  document.querySelectorAll("time[data-age]").forEach(showAge);
  setInterval(() => document.querySelectorAll("time[data-age]").forEach(showAge), 15000);
  plan?.setAttribute("data-live", "");
}
