// Recent events, newest first, as the event watch sends them (a repeat updates its row).
import { follow } from "/ui/api.js";
import { $, el, replaceRows, when } from "/ui/dom.js";

const KEEP = 200;

export function startEvents({ onDenied, onState }) {
  const events = new Map();
  return follow(
    `/v1/events?watch=true&limit=${KEEP}`,
    (frame) => {
      const event = JSON.parse(frame.data);
      const key = `${event.object}|${event.reason}|${event.firstTimestamp}`;
      events.delete(key);
      events.set(key, event);
      while (events.size > KEEP) events.delete(events.keys().next().value);
      const newest = [...events.values()].sort((a, b) => (a.lastTimestamp < b.lastTimestamp ? 1 : -1));
      replaceRows($("#events-table tbody"), newest.map(row));
    },
    { onDenied, onState },
  );
}

function row(event) {
  return el(
    "tr",
    { class: "event" },
    el("td", {}, when(event.lastTimestamp)),
    el("td", { class: `type-${event.type}` }, event.type),
    el("td", {}, event.object ?? ""),
    el("td", {}, event.reason),
    el("td", {}, event.message),
    el("td", { class: "num" }, event.count),
  );
}
