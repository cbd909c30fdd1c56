// A live page's EventSource (the console's floor map, the displays), and what the page
// says of it: onLive when it opens or opens again; onLost once it has been away for
// LOST_AFTER_MS (4 s), or at once when the server refused it for good (a revoked display).
// A stream the server ends at its age (IKN_SSE_MAX_AGE_S, an hour) is open again
// within its retry (2 s), so nobody is told it was lost.

export const LOST_AFTER_MS = 4000;

export function openStream(url, { onLive, onLost, onMessage }) {
  const source = new EventSource(url);
  let away = null;
  const lost = () => {
    clearTimeout(away);
    away = null;
    onLost();
  };
  source.addEventListener("open", () => {
    clearTimeout(away);
    away = null;
    onLive();
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) lost();
    else away ??= setTimeout(lost, LOST_AFTER_MS);
  });
  source.addEventListener("message", (message) => onMessage(JSON.parse(message.data)));
  return source;
}
