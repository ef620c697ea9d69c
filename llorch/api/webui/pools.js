// Pools and their replicas. The pool watch says at once when a pool or a replica changes (state,
// phase, restarts); slot use, the queue and tokens/s change with every task without an object
// changing, so /v1/replicasets is read every second as well.
import { follow, get, poll } from "/ui/api.js";
import { $, bytes, el, replaceRows } from "/ui/dom.js";

const LOAD_EVERY_MS = 1000;

export function startPools({ onDenied, onState, onPools }) {
  const pools = new Map();
  let loads = new Map();

  const render = () => {
    const names = [...pools.keys()].sort();
    $("#pools-empty").hidden = names.length > 0;
    replaceRows(
      $("#pools-table tbody"),
      names.map((name) => poolRow(pools.get(name), loads.get(name))),
    );
    replaceRows(
      $("#replicas-table tbody"),
      names.flatMap((name) => replicaRows(pools.get(name), loads.get(name))),
    );
    onPools(names);
  };

  const loadReplicaSets = async () => {
    const answer = await get("/v1/replicasets");
    loads = new Map(answer.replicasets.map((set) => [set.id, set]));
    render();
  };

  const stopWatch = follow(
    "/v1/pools?watch=true",
    (frame) => {
      const change = JSON.parse(frame.data);
      const name = change.object.metadata.name;
      if (change.type === "DELETED") pools.delete(name);
      else pools.set(name, change.object);
      render();
      loadReplicaSets().catch(() => {});
    },
    { onDenied, onState },
  );
  const stopPoll = poll(loadReplicaSets, LOAD_EVERY_MS, { onDenied });
  return () => {
    stopWatch();
    stopPoll();
  };
}

function tokensPerSecond(load) {
  const rates = (load?.replicas ?? []).map((r) => r.tokens_per_second).filter((r) => r !== null);
  return rates.length ? rates.reduce((a, b) => a + b, 0).toFixed(1) : "";
}

function poolRow(pool, load) {
  const status = pool.status ?? {};
  const state = load?.state ?? (pool.errors?.length ? "Invalid" : "");
  const desired = load?.replicas_desired ?? status.replicas ?? pool.spec.replicas;
  return el(
    "tr",
    { "data-pool": pool.metadata.name },
    el("td", {}, pool.metadata.name),
    el("td", {}, pool.spec.model ?? pool.spec.endpoint ?? ""),
    el("td", {}, pool.spec.engine ?? ""),
    el("td", { class: `state state-${state}` }, state),
    el("td", { class: "num replicas" }, `${status.readyReplicas ?? 0}/${desired ?? 0}`),
    el("td", { class: "num slots" }, load ? `${load.slots_total - load.slots_free}/${load.slots_total}` : ""),
    el("td", { class: "num queue" }, load?.slo?.queue_depth ?? ""),
    el("td", { class: "num tps" }, tokensPerSecond(load)),
  );
}

function replicaRows(pool, load) {
  const live = new Map((load?.replicas ?? []).map((r) => [r.id, r]));
  return (pool.status?.replicaStatuses ?? []).map((replica) => {
    const now = live.get(replica.id);
    const gpus = (replica.gpus ?? []).map((g) => `GPU${g.index}`).join(", ") || "CPU";
    return el(
      "tr",
      { "data-replica": replica.id },
      el("td", {}, replica.id),
      el("td", { class: `phase phase-${replica.phase}` }, replica.phase),
      el("td", {}, gpus),
      el("td", { class: "num" }, bytes(replica.memoryBytes)),
      el("td", { class: "num" }, now ? `${now.busy}/${now.slots}` : ""),
      el("td", { class: "num" }, now?.tokens_per_second?.toFixed(1) ?? ""),
      el("td", { class: "num" }, replica.restarts ?? 0),
      el("td", {}, replica.lastError ?? replica.reason ?? ""),
    );
  });
}
