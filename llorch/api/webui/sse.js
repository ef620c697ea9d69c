// The server-sent events wire format (the WHATWG HTML standard's "event stream"), parsed from
// text chunks as they arrive: a chunk may end in the middle of a line or of a frame.
const LINE_END = /\r\n|\n|\r(?=[^\n])/;

export function parseEvents(onFrame) {
  let buffer = "";
  let event = "";
  let data = [];
  let id = null;
  const dispatch = () => {
    if (data.length) onFrame({ event: event || "message", data: data.join("\n"), id });
    event = "";
    data = [];
  };
  const line = (text) => {
    if (text === "") return dispatch();
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id" && !value.includes("\0")) id = value;
  };
  return (chunk) => {
    buffer += chunk;
    for (let match = buffer.match(LINE_END); match; match = buffer.match(LINE_END)) {
      line(buffer.slice(0, match.index));
      buffer = buffer.slice(match.index + match[0].length);
    }
  };
}
