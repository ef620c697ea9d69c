// The page: the token first (kept for this tab in sessionStorage), then every panel started
// with it. A refused token stops everything and says so.
import { get, session } from "/ui/api.js";
import { $ } from "/ui/dom.js";
import { wireArtifacts } from "/ui/artifacts.js";
import { startEvents } from "/ui/events.js";
import { startGpus } from "/ui/gpus.js";
import { setPools, startPlayground } from "/ui/playground.js";
import { startPools } from "/ui/pools.js";

let stops = [];
let loadArtifacts = () => {};
const streams = new Map();

function showError(error) {
  const line = $("#error");
  line.textContent = error ? `${error.message}` : "";
  line.hidden = !error;
}

function refused(error) {
  stopAll();
  session.forget();
  showLogin(`The server refused the token: ${error.message}`);
}

function stopAll() {
  for (const stop of stops) stop();
  stops = [];
  streams.clear();
}

function liveState(name) {
  return (state) => {
    streams.set(name, state);
    const states = [...streams.values()];
    $("#live").textContent = states.every((s) => s === "live") ? "● live" : "○ reconnecting";
  };
}

function showLogin(message) {
  $("#main").hidden = true;
  $("#forget").hidden = true;
  $("#login").hidden = false;
  const line = $("#login-error");
  line.textContent = message ?? "";
  line.hidden = !message;
  $("#token").focus();
}

async function connect() {
  try {
    // The token is checked once with a read every token with any scope may make.
    await get("/v1/capabilities");
  } catch (error) {
    refused(error);
    return;
  }
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#forget").hidden = false;
  showError(null);
  stops = [
    startPools({ onDenied: refused, onState: liveState("pools"), onPools: setPools }),
    startEvents({ onDenied: refused, onState: liveState("events") }),
    startGpus({ onDenied: refused, onError: showError }),
  ];
  loadArtifacts();
}

function showPanel(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.panel === name);
  }
  for (const panel of document.querySelectorAll(".panel")) {
    panel.hidden = panel.id !== `panel-${name}`;
  }
}

async function main() {
  get("/version")
    .then((v) => ($("#server-version").textContent = `${v.version ?? ""}`))
    .catch(() => {});
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => showPanel(button.dataset.panel));
  }
  startPlayground({ onError: showError });
  loadArtifacts = wireArtifacts({ onError: showError });
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    session.remember($("#token").value.trim());
    $("#token").value = "";
    connect();
  });
  $("#forget").addEventListener("click", () => {
    stopAll();
    session.forget();
    showLogin();
  });
  if (session.known()) await connect();
  else showLogin();
}

main();
