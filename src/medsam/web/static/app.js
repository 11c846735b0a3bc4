// The medsam web app: NiiVue shows the image and the label map; the server segments.
// Every request goes to this page's own server (see medsam/web/app.py for the API).
import { Niivue, SLICE_TYPE } from "/static/niivue.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const state = { session: null, info: null, health: null, selected: null, version: 0, busy: false, slice: 0 };

const nv = new Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: false, isRadiologicalConvention: true,
                        crosshairColor: [1, 1, 0, 0.35], crosshairWidth: 0.5, dragAndDropEnabled: false,
                        logLevel: "error", loadingText: "no scan open: choose a file on the left and press Open" });
nv.opts.dragModePrimary = nv.dragModes.roiSelection;   // left drag: a box
nv.drawOpacity = 0.45;

function withToken(path, extra = {}) {
  const params = new URLSearchParams(extra);
  if (token) params.set("token", token);
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function status(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

// Run one request at a time; while it runs, show the server's progress.
async function work(what, fn) {
  if (state.busy) {
    $("status").textContent += " (still working: try again when it is done)";
    return;
  }
  state.busy = true;
  status(`${what}...`, "busy");
  const started = performance.now();
  let running = true;
  const poll = setInterval(async () => {
    if (!state.session) return;
    const p = (await api(`/api/sessions/${state.session}`).catch(() => ({}))).progress || {};
    // an answer that arrives after the work ended must not overwrite its final status
    const of = p.total ? ` of up to ${p.total}` : "";
    const left = p.seconds_left != null ? `, up to about ${p.seconds_left.toFixed(0)} s left` : "";
    if (p.busy && running) status(`${what}: ${p.slices}${of} slice(s), ${p.embeddings} new embedding(s), ${p.seconds} s${left}`, "busy");
  }, 400);
  try {
    await fn();
    running = false;
    status(`${what}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    running = false;
    status(`${what}: ${err.message}`, "error");
  } finally {
    running = false;
    clearInterval(poll);
    state.busy = false;
  }
}

// ---------------------------------------------------------------- coordinates

function ras2index(mm) {
  const m = state.info.image.index_from_ras;
  return [0, 1, 2].map((r) => m[r][0] * mm[0] + m[r][1] * mm[1] + m[r][2] * mm[2] + m[r][3]);
}

function index2ras(ijk) {  // inverse of ras2index (the matrix is affine)
  const m = state.info.image.index_from_ras;
  const a = [0, 1, 2].map((r) => [m[r][0], m[r][1], m[r][2]]);
  const b = [0, 1, 2].map((r) => ijk[r] - m[r][3]);
  const det = (q) => q[0][0] * (q[1][1] * q[2][2] - q[1][2] * q[2][1]) - q[0][1] * (q[1][0] * q[2][2] - q[1][2] * q[2][0])
    + q[0][2] * (q[1][0] * q[2][1] - q[1][1] * q[2][0]);
  const d = det(a);
  return [0, 1, 2].map((c) => det(a.map((row, r) => row.map((v, k) => (k === c ? b[r] : v)))) / d);
}

const is3D = () => state.info && state.info.image.dimension === 3;
const keySlice = (obj) => (obj.prompt.slice ?? Math.floor((obj.prompt.box[2] + obj.prompt.box[5]) / 2));
const zRange = (obj) => obj.prompt.z_range || (obj.prompt.box.length === 6 ? [obj.prompt.box[2], obj.prompt.box[5]] : null);
const box2d = (p) => (p.box.length === 6 ? [p.box[0], p.box[1], p.box[3], p.box[4]] : p.box);
const objectOf = (label) => (state.info.objects || []).find((o) => o.label === label);

// Canvas position (CSS pixels) of pixel (x, y) on slice z: for tests and for moving to a slice.
function canvasPoint(x, y, z = 0) {
  const pos = nv.frac2canvasPos(nv.mm2frac(index2ras([x, y, z])));
  const scale = nv.uiData.dpr || window.devicePixelRatio || 1;
  return pos ? [pos[0] / scale, pos[1] / scale] : null;
}

function goToSlice(z) {
  const [h, w] = state.info.image.shape.slice(-2);
  nv.scene.crosshairPos = nv.mm2frac(index2ras([(w - 1) / 2, (h - 1) / 2, z]));
  nv.drawScene();
  nv.createOnLocationChange();
}

// ---------------------------------------------------------------- segmenting

async function onDragRelease(drag) {
  if (!state.info) return;
  if (drag.tileIdx < 0) { status("draw the box inside one view", "error"); return; }
  const a = ras2index(drag.mmStart), b = ras2index(drag.mmEnd);
  const z = is3D() ? Math.round(a[2]) : 0;
  if (is3D() && Math.round(b[2]) !== z) {
    status("draw on the scan's own slice plane (the view whose slices are the file's)", "error");
    return;
  }
  const tool = document.querySelector("input[name=tool]:checked").value;
  if (tool === "box") {
    const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])].map(Math.round);
    if (box[2] - box[0] < 2 || box[3] - box[1] < 2) return;   // a click, not a box
    const label = state.selected ?? nextLabel();
    const old = objectOf(label);
    const request = { box, label, name: old ? old.name : `object ${label}` };
    if (is3D()) Object.assign(request, { slice: z, propagate: false });
    await segment(request, "segmenting");
  } else {
    const obj = state.selected !== null && objectOf(state.selected);
    if (!obj) { status("select an object (or draw its box) before clicking", "error"); return; }
    const click = { x: Math.round(b[0]), y: Math.round(b[1]), z, foreground: tool === "1" };
    await work(`${click.foreground ? "adding" : "removing"} at slice ${z}`, async () =>
      show(await api(`/api/sessions/${state.session}/objects/${obj.label}/clicks`, { method: "POST", json: click })));
  }
}

function requestFor(obj, changes = {}) {
  const p = obj.prompt;
  const request = { box: box2d(p), label: obj.label, name: obj.name, points: p.points || [],
                    point_labels: p.point_labels || [], ...changes };
  if (is3D()) Object.assign(request, { slice: keySlice(obj), z_range: zRange(obj), ...changes });
  return request;
}

// The object's first (end 0) or last (end 1) slice becomes the current slice.
function setRangeEnd(obj, end) {
  const depth = state.info.image.shape[0];
  const range = [...(zRange(obj) || [0, depth - 1])];
  range[end] = state.slice;
  if (range[0] > range[1]) { status(`the first slice must not come after the last (${range[0]} > ${range[1]})`, "error"); return; }
  // clicks outside the new range no longer apply to the object
  const keep = (obj.prompt.points || []).map((p, i) => i).filter((i) => {
    const z = obj.prompt.points[i].length === 3 ? obj.prompt.points[i][2] : keySlice(obj);
    return z >= range[0] && z <= range[1];
  });
  return segment(requestFor(obj, { z_range: range, points: keep.map((i) => obj.prompt.points[i]),
                                   point_labels: keep.map((i) => obj.prompt.point_labels[i]) }),
                 `slices ${range[0]}-${range[1]}`);
}

function nextLabel() {
  const used = (state.info.objects || []).map((o) => o.label);
  return used.length ? Math.max(...used) + 1 : 1;
}

async function segment(request, what) {
  await work(what, async () => {
    state.selected = request.label;
    show(await api(`/api/sessions/${state.session}/segment`, { method: "POST", json: request }));
  });
}

// ---------------------------------------------------------------- display

async function show(info) {
  state.info = info;
  state.version += 1;
  await nv.loadDrawingFromUrl(withToken(`/api/sessions/${state.session}/labels.nii.gz`, { v: state.version }));
  renderObjects();
  renderExports();
  $("undo").disabled = !info.can_undo;
}

// Draw label k in the server's colour of label k (the colours of .seg.nrrd and DICOM SEG exports).
function useLabelColours(colours) {
  const cmap = { R: [0], G: [0], B: [0], A: [0], I: [0] };
  for (let k = 1; k < 256; k++) {
    const [r, g, b] = colours[(k - 1) % colours.length];
    cmap.R.push(r); cmap.G.push(g); cmap.B.push(b); cmap.A.push(255); cmap.I.push(k);
  }
  nv.setDrawColormap(cmap);
}

function colour(label) {
  const lut = nv.drawLut.lut;
  const i = (label % 256) * 4;
  return `rgb(${lut[i]}, ${lut[i + 1]}, ${lut[i + 2]})`;
}

function sizeText(o) {
  if (o.unit === "mL") return `${o.voxels} voxels, ${o.volume.toFixed(2)} mL`;
  if (o.unit === "mm2") return `${o.voxels} pixels, ${o.volume.toFixed(1)} mm²`;
  return `${o.voxels} ${o.unit} (pixel size unknown)`;
}

function renderObjects() {
  const list = $("objects");
  list.replaceChildren();
  for (const o of state.info.objects || []) {
    const li = document.createElement("li");
    li.dataset.label = o.label;
    li.className = o.label === state.selected ? "selected" : "";
    const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
    swatch.style.background = colour(o.label);
    const name = Object.assign(document.createElement("input"), { type: "text", value: o.name });
    name.addEventListener("change", () => segment(requestFor(o, { name: name.value }), "renaming"));
    const range = zRange(o);
    const where = is3D() ? (o.slices ? `, slices ${o.slices[0]}-${o.slices[1]}` : "") + `, key slice ${keySlice(o)}`
      + (range ? `, range ${range[0]}-${range[1]}` : "") : "";
    const iou = o.predicted_iou == null ? "" : `, predicted IoU ${o.predicted_iou.toFixed(2)}`;
    const size = Object.assign(document.createElement("span"), { className: "size", textContent: sizeText(o) + where + iou });
    const warnings = (o.warnings || []).map((text) =>
      Object.assign(document.createElement("span"), { className: "warning", textContent: `Probably wrong: ${text}` }));
    const buttons = document.createElement("div");
    if (is3D()) buttons.append(button("Propagate", () => segment(requestFor(o, { z_range: null }), "propagating")),
                               button("First slice here", () => setRangeEnd(o, 0)),
                               button("Last slice here", () => setRangeEnd(o, 1)),
                               button("Go to key slice", () => goToSlice(keySlice(o))));
    buttons.append(button("Delete", () => work("deleting", async () =>
      show(await api(`/api/sessions/${state.session}/objects/${o.label}`, { method: "DELETE" })))));
    li.append(swatch, name, size, ...warnings, buttons);
    li.addEventListener("click", (e) => { if (e.target === li || e.target === size) { state.selected = o.label; renderObjects(); } });
    list.append(li);
  }
}

function button(text, onclick) {
  const b = Object.assign(document.createElement("button"), { textContent: text });
  b.addEventListener("click", onclick);
  return b;
}

function renderExports() {
  const box = $("exports");
  box.replaceChildren();
  const image = state.info.image;
  const formats = Object.keys(image.exports);   // the server's choice: DICOM SEG for DICOM scans
  const text = { "nii.gz": "labels .nii.gz", nrrd: "labels .seg.nrrd (Slicer)", png: "labels .png", dcm: "DICOM SEG" };
  for (const f of formats) {
    const a = Object.assign(document.createElement("a"), {
      href: withToken(`/api/sessions/${state.session}/labels`, { format: f }), textContent: text[f] || f,
      download: image.exports[f] });
    a.className = "export";
    box.append(a, " ");
  }
  box.append(Object.assign(document.createElement("a"), {
    href: withToken(`/api/sessions/${state.session}/prompts`), textContent: "prompts .json",
    download: `${image.case}_prompts.json`, className: "export" }));
  const options = [image.modality && `--modality ${image.modality}`, image.window && `--window ${image.window}`,
                   state.health.replay_options].filter(Boolean).join(" ");
  $("pacs-save").hidden = !(state.health.pacs && image.exports.dcm && state.info.objects.length);
  $("replay").textContent = ["medsam segment", image.name, "--prompts", `${image.case}_prompts.json`, options,
                             "-o", image.exports[formats[0]]].filter(Boolean).join(" ");
}

// ---------------------------------------------------------------- opening

async function open() {
  const files = [...$("file").files, ...$("folder").files];
  if (!files.length) { status("choose a file (or a DICOM folder) first", "error"); return; }
  await work(`opening ${files.length === 1 ? files[0].name : files.length + " files"}`, async () => {
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    if ($("modality").value) form.append("modality", $("modality").value);
    if ($("window").value) form.append("window", $("window").value);
    await opened(await inSession((sid) => api(`/api/sessions/${sid}/image`, { method: "POST", body: form })));
  });
}

// request(session id) in this page's session, opened first when there is none, and opened
// again when the server has let it expire.
async function inSession(request) {
  const call = async () => {
    if (!state.session) state.session = (await api("/api/sessions", { method: "POST" })).id;
    return request(state.session);
  };
  return call().catch((err) => {
    if (!err.message.startsWith("no session")) throw err;
    state.session = null;
    return call();
  });
}

// After an upload or a series opened from the PACS: show the image and its (no) objects.
async function opened(info) {
  state.info = info;
  state.selected = null;
  await nv.loadVolumes([{ url: withToken(`/api/sessions/${state.session}/image.nii.gz`), name: "image.nii.gz" }]);
  nv.setSliceType(SLICE_TYPE.AXIAL);
  nv.setRadiologicalConvention(is3D() && $("radiological").checked);
  if (info.image.modality === "ct" && is3D()) setDisplay(info.image.window === "lung" ? "-600,1500" : "40,400");
  await show(info);
}

// ---------------------------------------------------------------- the PACS (configured on the server)

async function findOnPacs() {
  await work("searching the PACS", async () => {
    const query = new URLSearchParams();
    if ($("pacs-patient").value.trim()) query.set("patient_id", $("pacs-patient").value.trim());
    if ($("pacs-modality").value.trim()) query.set("modality", $("pacs-modality").value.trim().toUpperCase());
    const found = await api(`/api/pacs/series?${query}`);
    const list = $("pacs-series");
    list.replaceChildren();
    for (const s of found.series) {
      const li = document.createElement("li");
      const text = [s.patient_id, s.date, s.modality, s.description, `${s.instances} images`].filter(Boolean).join(", ");
      li.append(text, " ", button("Open", () => openFromPacs(s)));
      li.title = `study ${s.study}, series ${s.series}`;
      list.append(li);
    }
    if (!found.series.length) list.append(Object.assign(document.createElement("li"), { textContent: "no series match" }));
  });
}

async function openFromPacs(s) {
  await work(`opening ${s.modality} series ${s.description || s.series} from the PACS`, async () => {
    const request = { study: s.study, series: s.series, modality: $("modality").value || null,
                      window: $("window").value || null };
    await opened(await inSession((sid) => api(`/api/sessions/${sid}/pacs`, { method: "POST", json: request })));
  });
}

async function saveToPacs() {
  let stored = null;
  await work("saving to the PACS", async () => {
    stored = await api(`/api/sessions/${state.session}/pacs/store`, { method: "POST" });
  });
  if (stored) status(`saved ${stored.file} to the PACS ${stored.server}`);
}

function setDisplay(value) {
  $("display").value = value;
  const vol = nv.volumes[0];
  if (!vol) return;
  if (value) {
    const [level, width] = value.split(",").map(Number);
    vol.cal_min = level - width / 2;
    vol.cal_max = level + width / 2;
  } else {
    vol.cal_min = vol.robust_min;
    vol.cal_max = vol.robust_max;
  }
  nv.updateGLVolume();
}

async function main() {
  await nv.attachToCanvas($("viewer"));
  nv.onDragRelease = onDragRelease;
  nv.onLocationChange = (loc) => {
    if (!state.info) return;
    const [x, y, z] = ras2index(loc.mm).map(Math.round);
    state.slice = z;
    $("location").textContent = is3D() ? `slice ${z} (x ${x}, y ${y})` : `x ${x}, y ${y}`;
  };
  state.health = await api("/api/health");
  useLabelColours(state.health.label_colours);
  $("open").addEventListener("click", open);
  if (state.health.pacs) {
    $("pacs").hidden = false;
    $("pacs-server").textContent = state.health.pacs;
    $("pacs-find").addEventListener("click", findOnPacs);
    $("pacs-save").addEventListener("click", saveToPacs);
  }
  $("new").addEventListener("click", () => { state.selected = null; if (state.info) renderObjects(); });
  $("undo").addEventListener("click", () => work("undoing", async () =>
    show(await api(`/api/sessions/${state.session}/undo`, { method: "POST" }))));
  $("display").addEventListener("change", () => setDisplay($("display").value));
  $("radiological").addEventListener("change", () => nv.setRadiologicalConvention(is3D() && $("radiological").checked));
  const views = { axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL,
                  multi: SLICE_TYPE.MULTIPLANAR };
  for (const b of document.querySelectorAll("[data-view]")) b.addEventListener("click", () => nv.setSliceType(views[b.dataset.view]));
  status(`ready: model ${state.health.model}`);
}

window.medsamApp = { nv, state, canvasPoint, goToSlice, colour };
main().catch((err) => status(err.message, "error"));
