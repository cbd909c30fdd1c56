// The displays (/display/kiosk/..., /display/desk/...): the server's frames (JSON over
// SSE) map an element's id to its new HTML, rendered by the server in the display's
// language; this puts each in place. Nothing is decided here. The EventSource
// reconnects by itself, and the server sends the whole state again on each connection;
// #display-status says whether the display is live (live_stream.js).

import { openStream } from "./live_stream.js";

const main = document.querySelector("[data-display-stream]");
const status = document.getElementById("display-status");

function say(text) {
  if (status) status.textContent = text;
}

if (main && main.dataset.displayStream) {
  openStream(main.dataset.displayStream, {
    onLive: () => say(main.dataset.live),
    onLost: () => say(main.dataset.lost),
    onMessage: (parts) => {
      for (const [id, html] of Object.entries(parts)) {
        const node = document.getElementById(id);
        if (node) node.innerHTML = html;
      }
      main.dataset.frames = String(Number(main.dataset.frames || 0) + 1);
    },
  });
}
