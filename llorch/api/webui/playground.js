// The playground: a prompt admitted with POST /v1/tasks, its reply read token by token from the
// task's SSE stream, and a Cancel that asks the server to stop it (POST /v1/tasks/{id}/cancel).
import { post, stream } from "/ui/api.js";
import { $, el } from "/ui/dom.js";

let running = null;

export function startPlayground({ onError }) {
  $("#playground-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send().catch((error) => {
      finish(`failed: ${error.message}`, "error");
      onError(error);
    });
  });
  $("#playground-cancel").addEventListener("click", () => cancel().catch(onError));
}

export function setPools(names) {
  const select = $("#playground-pool");
  const current = select.value;
  if ([...select.options].map((o) => o.value).join() === names.join()) return;
  select.replaceChildren(...names.map((name) => el("option", { value: name, selected: name === current }, name)));
}

function status(text, state) {
  const line = $("#playground-status");
  line.textContent = text;
  line.dataset.state = state;
}

function finish(text, state) {
  running = null;
  status(text, state);
  $("#playground-send").disabled = false;
  $("#playground-cancel").disabled = true;
}

async function send() {
  const output = $("#playground-output");
  const text = document.createTextNode("");
  output.replaceChildren(text);
  $("#playground-send").disabled = true;
  const body = {
    pool: $("#playground-pool").value,
    prompt: $("#playground-prompt").value,
    max_tokens: Number($("#playground-max").value),
  };
  status("admitting…", "admitting");
  const admitted = await post("/v1/tasks", body);
  running = admitted.task_id;
  output.dataset.task = admitted.task_id;
  $("#playground-cancel").disabled = false;
  status(`queued at ${admitted.queue_position} (task ${admitted.task_id})`, "queued");
  let tokens = 0;
  let ended = null;
  // Tokens come faster than a screen refreshes: they are shown once per frame, so that a long
  // reply does not lay the page out again for every token.
  let pending = "";
  let frame = null;
  const show = () => {
    frame = null;
    // Follow the reply as it grows, unless the person scrolled up to read.
    const atEnd = output.scrollHeight - output.scrollTop - output.clientHeight < 24;
    text.appendData(pending);
    pending = "";
    if (atEnd) output.scrollTop = output.scrollHeight;
    // A cancel on its way keeps saying so until the stream ends.
    if ($("#playground-status").dataset.state === "running") {
      status(`streaming: ${tokens} tokens (task ${admitted.task_id})`, "running");
    }
  };
  await stream(admitted.streams.sse, (event) => {
    const data = JSON.parse(event.data);
    if (event.event === "started") status(`running on ${data.replica ?? "a replica"} (task ${admitted.task_id})`, "running");
    else if (event.event === "token") {
      pending += data.t;
      tokens += 1;
      frame ??= requestAnimationFrame(show);
    } else if (event.event === "end") {
      ended = [`done: ${data.tokens_out} tokens in ${data.decode_ms} ms (${data.finish_reason ?? "end"})`, "done"];
    } else if (event.event === "error") {
      ended = data.code === "CANCELED"
        ? [`canceled after ${tokens} tokens`, "canceled"]
        : [`error: ${data.message} (${data.code})`, "error"];
    }
  });
  if (frame !== null) cancelAnimationFrame(frame);
  show();
  finish(...(ended ?? [`the stream closed after ${tokens} tokens`, "error"]));
}

async function cancel() {
  if (running === null) return;
  $("#playground-cancel").disabled = true;
  status("canceling…", "canceling");
  await post(`/v1/tasks/${running}/cancel`);
}
