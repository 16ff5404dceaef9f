// deepcream web page: plain JS, no libraries, no network access beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { results: [], current: 0, beforeUrl: null, stem: "image" };

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function syncForm() {
  const mosaic = mode() === "mosaic";
  const auto = mosaic && $("auto_mask").checked;
  $("mosaic-options").hidden = !mosaic;
  $("original-row").hidden = auto;
  $("mask-options").hidden = auto;
  $("image-label").textContent = !mosaic
    ? "Image with the regions painted in the mask color"
    : auto
      ? "Pixelated image (the mosaic is found automatically)"
      : "Copy of the image with the mosaic painted in the mask color";
}

function setStatus(text, { busy = false, error = false, percent = null } = {}) {
  const box = $("status");
  box.hidden = false;
  box.classList.toggle("error", error);
  $("status-text").textContent = text;
  const bar = $("progress");
  if (percent === null) bar.removeAttribute("value"); // indeterminate while the server works
  else bar.value = percent;
  bar.hidden = !busy;
}

// Several variations come back as a zip of stored (uncompressed) PNGs: read its local headers.
function unzipStored(buffer) {
  const view = new DataView(buffer);
  const files = [];
  let at = 0;
  while (at + 30 <= buffer.byteLength && view.getUint32(at, true) === 0x04034b50) {
    const method = view.getUint16(at + 8, true);
    const size = view.getUint32(at + 18, true);
    const nameLen = view.getUint16(at + 26, true);
    const extraLen = view.getUint16(at + 28, true);
    const name = new TextDecoder().decode(new Uint8Array(buffer, at + 30, nameLen));
    const start = at + 30 + nameLen + extraLen;
    if (method !== 0) throw new Error("unexpected compressed zip entry " + name);
    files.push({ name, blob: new Blob([buffer.slice(start, start + size)], { type: "image/png" }) });
    at = start + size;
  }
  return files;
}

function showResult(index) {
  state.current = index;
  const item = state.results[index];
  $("result-img").src = item.url;
  const a = $("download");
  a.href = item.url;
  a.download = state.results.length > 1
    ? `${state.stem}-decensored-${index + 1}.png` : `${state.stem}-decensored.png`;
  document.querySelectorAll("#variation-buttons button").forEach((b, i) => b.classList.toggle("on", i === index));
}

function setView(kind) {
  $("compare").className = "compare " + kind;
  $("view-slider").classList.toggle("on", kind === "slider");
  $("view-side").classList.toggle("on", kind === "side");
}

function clearResults() {
  for (const r of state.results) URL.revokeObjectURL(r.url);
  state.results = [];
  if (state.beforeUrl) URL.revokeObjectURL(state.beforeUrl);
  state.beforeUrl = null;
}

async function errorMessage(xhr) {
  try {
    const body = JSON.parse(await xhr.response.text());
    return body.message || `HTTP ${xhr.status}`;
  } catch (_) {
    return `HTTP ${xhr.status} ${xhr.statusText}`;
  }
}

function submit(event) {
  event.preventDefault();
  const image = $("image").files[0];
  const m = mode();
  const auto = m === "mosaic" && $("auto_mask").checked;
  const original = $("original").files[0];
  if (!image) return setStatus("Choose an image first.", { error: true });
  if (m === "mosaic" && !auto && !original)
    return setStatus("Mosaic mode needs the original pixelated image too (or tick automatic detection).", { error: true });

  const form = new FormData();
  form.append("image", image);
  form.append("mode", m);
  form.append("variations", $("variations").value);
  if (m === "mosaic" && !auto) form.append("original", original);
  if (auto) form.append("auto_mask", "true");
  else {
    form.append("mask_color", $("mask_color").value);
    form.append("mask_tolerance", $("mask_tolerance").value || "0");
    if ($("antialias").checked) form.append("antialias", "true");
  }

  clearResults();
  $("result").hidden = true;
  $("submit").disabled = true;
  state.stem = image.name.replace(/\.[^.]*$/, "") || "image";
  // "Before" is what the result is compared with: the pixelated original in mosaic mode.
  state.beforeUrl = URL.createObjectURL(m === "mosaic" && !auto ? original : image);

  const xhr = new XMLHttpRequest();
  const started = performance.now();
  let timer = null;
  xhr.open("POST", "/v1/decensor");
  xhr.responseType = "blob";
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setStatus(`Uploading… ${Math.round((100 * e.loaded) / e.total)}%`, { busy: true, percent: (100 * e.loaded) / e.total });
  };
  xhr.upload.onload = () => {
    const tick = () => setStatus(`Working… ${((performance.now() - started) / 1000).toFixed(1)} s`, { busy: true });
    tick();
    timer = setInterval(tick, 200);
  };
  xhr.onerror = () => {
    clearInterval(timer);
    $("submit").disabled = false;
    setStatus("Network error: the server did not answer.", { error: true });
  };
  xhr.onload = async () => {
    clearInterval(timer);
    $("submit").disabled = false;
    if (xhr.status !== 200) {
      setStatus(await errorMessage(xhr), { error: true });
      return;
    }
    const type = xhr.getResponseHeader("Content-Type") || "";
    const blobs = type.startsWith("application/zip")
      ? unzipStored(await xhr.response.arrayBuffer()).map((f) => f.blob)
      : [xhr.response];
    state.results = blobs.map((blob) => ({ blob, url: URL.createObjectURL(blob) }));
    $("before-img").src = state.beforeUrl;
    const buttons = $("variation-buttons");
    buttons.replaceChildren();
    if (state.results.length > 1) {
      state.results.forEach((_, i) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = `Variation ${i + 1}`;
        b.addEventListener("click", () => showResult(i));
        buttons.append(b);
      });
    }
    showResult(0);
    const engine = xhr.getResponseHeader("X-Deepcream-Engine");
    const regions = xhr.getResponseHeader("X-Deepcream-Regions");
    const ms = xhr.getResponseHeader("X-Deepcream-Processing-Ms");
    $("result-info").textContent =
      `Engine: ${engine} · regions filled: ${regions} · server time: ${(Number(ms) / 1000).toFixed(2)} s`;
    $("result").hidden = false;
    setStatus("Done.", {});
    $("status").hidden = true;
    document.body.dataset.state = "done"; // lets automated checks wait for the result
  };
  document.body.dataset.state = "working";
  setStatus("Uploading…", { busy: true, percent: 0 });
  xhr.send(form);
}

async function loadInfo() {
  try {
    const info = await (await fetch("/v1/info")).json();
    const engines = Object.entries(info.engines || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
    $("engine-line").textContent = info.ready
      ? `Engines — ${engines}. Limits: ${(info.limits.max_upload_bytes / 1048576).toFixed(0)} MB upload, ${(info.limits.max_pixels / 1e6).toFixed(0)} megapixels.`
      : "Models are still loading; requests will be accepted in a moment.";
    if (!info.ready) setTimeout(loadInfo, 2000);
  } catch (_) {
    $("engine-line").textContent = "Cannot reach the server.";
  }
}

document.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener("change", syncForm));
$("auto_mask").addEventListener("change", syncForm);
$("form").addEventListener("submit", submit);
$("split").addEventListener("input", (e) => $("compare").style.setProperty("--split", e.target.value + "%"));
$("view-slider").addEventListener("click", () => setView("slider"));
$("view-side").addEventListener("click", () => setView("side"));
syncForm();
loadInfo();
