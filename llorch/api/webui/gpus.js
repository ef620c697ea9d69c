// The GPUs as NVML sees them now, and what llorch's replicas reserved on each.
import { get, poll } from "/ui/api.js";
import { $, bytes, el } from "/ui/dom.js";

const EVERY_MS = 3000;

export function startGpus({ onDenied, onError }) {
  return poll(
    async () => {
      const answer = await get("/v1/gpus");
      $("#gpus").replaceChildren(...(answer.gpus.length ? answer.gpus.map(gpuBox) : [noGpu()]));
    },
    EVERY_MS,
    { onDenied, onError },
  );
}

function noGpu() {
  return el(
    "p",
    { id: "no-gpu", class: "muted" },
    "No GPU: NVML reports none on this machine (no NVIDIA driver), so llorch runs CPU pools only. ",
    "`llorchctl doctor` says why.",
  );
}

function gpuBox(gpu) {
  const extra = [
    gpu.utilization_pct !== null ? `${gpu.utilization_pct}% busy` : null,
    gpu.temperature_c !== null ? `${gpu.temperature_c} °C` : null,
  ].filter(Boolean);
  return el(
    "div",
    { class: "gpu", "data-gpu": gpu.index },
    el("h2", {}, `GPU${gpu.index} ${gpu.name}`),
    el("meter", { min: 0, max: gpu.total_bytes, value: gpu.used_bytes, high: gpu.total_bytes * 0.9 }),
    el(
      "p",
      { class: "vram" },
      `VRAM ${bytes(gpu.used_bytes)} used of ${bytes(gpu.total_bytes)}, ${bytes(gpu.free_bytes)} free`,
      extra.length ? ` · ${extra.join(" · ")}` : "",
    ),
    gpu.reservations.length
      ? el(
          "ul",
          {},
          gpu.reservations.map((r) =>
            el("li", {}, `${r.replica} (${r.phase}) reserves ${bytes(r.reserved_bytes)}`),
          ),
        )
      : el("p", { class: "muted" }, "No llorch replica placed here."),
  );
}
