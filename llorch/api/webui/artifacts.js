// The artifact browser: the stored artifacts, one's content, its lineage (what it derives from
// and what derives from it) and its diff against its parent or any other artifact.
import { get } from "/ui/api.js";
import { $, bytes, el, replaceRows, short, when } from "/ui/dom.js";

let listed = [];
let selected = null;
let failed = () => {};

// Wires the panel once; the function it returns reloads the list (on connect, on Refresh).
export function wireArtifacts({ onError }) {
  failed = onError;
  const refresh = () => loadList().catch(onError);
  $("#artifacts-refresh").addEventListener("click", refresh);
  $("#artifact-base").addEventListener("change", () => showDiff().catch(onError));
  return refresh;
}

async function loadList() {
  listed = (await get("/v1/artifacts?limit=200")).items;
  $("#artifacts-empty").hidden = listed.length > 0;
  replaceRows(
    $("#artifacts-table tbody"),
    listed.map((a) =>
      el(
        "tr",
        {
          "data-artifact": a.id,
          class: a.id === selected?.id ? "selected" : null,
          onclick: () => select(a.id).catch(failed),
        },
        el("td", {}, el("code", {}, short(a.id))),
        el("td", {}, a.kind),
        el("td", {}, a.tags.join(", ")),
        el("td", { class: "num" }, bytes(a.size_bytes)),
        el("td", {}, when(a.created_ms)),
      ),
    ),
  );
}

async function select(id) {
  const [artifact, lineage] = await Promise.all([
    get(`/v1/artifacts/${id}`),
    get(`/v1/artifacts/${id}/lineage`),
  ]);
  selected = artifact;
  for (const row of document.querySelectorAll("#artifacts-table tbody tr")) {
    row.classList.toggle("selected", row.dataset.artifact === id);
  }
  $("#artifact-detail").hidden = false;
  $("#artifact-title").textContent = `${artifact.kind} ${short(artifact.id)}`;
  $("#artifact-meta").textContent =
    `${artifact.digest} · ${bytes(artifact.size_bytes)} · ${when(artifact.created_ms)}` +
    (artifact.tags.length ? ` · tags ${artifact.tags.join(", ")}` : "");
  $("#artifact-content").textContent = artifact.content;
  showLineage(artifact, lineage);
  fillBases(artifact);
  await showDiff();
}

function link(record, label) {
  return el("a", { "data-artifact": record.id, onclick: () => select(record.id).catch(failed) }, label);
}

function showLineage(artifact, lineage) {
  const items = [
    ...lineage.ancestors
      .slice()
      .reverse()
      .map((a) => el("li", { class: "ancestor" }, link(a, `${a.kind} ${short(a.id)}`))),
    el("li", { class: "self" }, el("strong", {}, `${artifact.kind} ${short(artifact.id)} (this one)`)),
    ...lineage.children.map((c) => el("li", { class: "child" }, "→ ", link(c, `${c.kind} ${short(c.id)}`))),
  ];
  $("#artifact-lineage").replaceChildren(...items);
}

function fillBases(artifact) {
  const others = listed.filter((a) => a.id !== artifact.id);
  const options = others.map((a) =>
    el(
      "option",
      { value: a.id, selected: a.id === artifact.parent },
      `${a.id === artifact.parent ? "parent " : ""}${a.kind} ${short(a.id)}`,
    ),
  );
  $("#artifact-base").replaceChildren(...options);
}

async function showDiff() {
  const base = $("#artifact-base").value;
  const view = $("#artifact-diff");
  if (!selected || !base) {
    view.replaceChildren("No other artifact to compare with.");
    return;
  }
  const answer = await get(`/v1/artifacts/${selected.id}/diff?base=${base}`);
  if (answer.same) {
    view.replaceChildren("The same text.");
    return;
  }
  view.replaceChildren(
    ...answer.diff.split("\n").map((line) => {
      const kind = line.startsWith("@@")
        ? "hunk"
        : line.startsWith("+") && !line.startsWith("+++")
          ? "add"
          : line.startsWith("-") && !line.startsWith("---")
            ? "del"
            : null;
      return el("span", { class: kind }, `${line}\n`);
    }),
  );
}
