// The visual search page: search by text, photo (choose, drop, paste) or "more like this"; add and delete products.
// A query is a list of weighted terms (a photo, words, items: more or less like them), sent as POST /search {"query"};
// results come one per product (an item without a product is a product of its own).
// Talks to the service's own API; no framework, no build step, nothing from the network but this service.

const $ = (selector) => document.querySelector(selector);
const state = { terms: [], label: "", queryUrl: null };

const keyStorage = "embedding-service-api-key";
let keyPrompt = null;

/** Asks for a key (once, however many requests were refused at the same time); null when the person cancels. */
function askForKey(reason) {
  keyPrompt ??= new Promise((resolve) => {
    const dialog = $("#key-dialog");
    $("#key-reason").textContent = reason;
    $("#api-key").value = "";
    const finish = (key) => {
      keyPrompt = null;
      if (dialog.open) dialog.close();
      resolve(key);
    };
    $("#key-form").onsubmit = (event) => {
      event.preventDefault();
      const key = $("#api-key").value.trim();
      if (key) {
        sessionStorage.setItem(keyStorage, key);
        finish(key);
      }
    };
    $("#key-cancel").onclick = () => finish(null);
    dialog.oncancel = () => finish(null);
    dialog.showModal();
  });
  return keyPrompt;
}

/** fetch with this tab's API key, if any; a 401 asks for a key and sends the request again with it. */
async function send(path, options = {}) {
  for (;;) {
    const key = sessionStorage.getItem(keyStorage);
    const headers = new Headers(options.headers || {});
    if (key) headers.set("X-API-Key", key);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    if (key) sessionStorage.removeItem(keyStorage);
    const entered = await askForKey(key ? "That key was not accepted; enter another." : "This service needs an API key.");
    if (!entered) return response;
  }
}

/** Shows an image the service serves: fetched with the key when there is one, since an img element cannot send it. */
async function showImage(image, url) {
  if (!sessionStorage.getItem(keyStorage)) {
    image.src = url;
    return;
  }
  const response = await send(url);
  if (!response.ok) return;
  image.onload = () => URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(await response.blob());
}

/** The service's answer as JSON, or an Error carrying its problem's detail and status. */
async function call(path, options = {}) {
  const response = await send(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error(body?.detail || body?.error?.message || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.retryAfter = response.headers.get("retry-after");
    throw error;
  }
  return body;
}

function show(message, kind = "info") {
  const box = $("#message");
  box.textContent = message;
  box.className = kind === "error" ? "error" : "";
}

/** A person's reading of a failure: what happened and what to do. */
function explain(error) {
  if (error.status === 503 && /DATABASE_URL/.test(error.message)) {
    return "Storage is not configured: start the service with DATABASE_URL set (scripts/postgres.sh start gives a database).";
  }
  if (error.status === 503 && /loading/i.test(error.message)) return "The model is still loading; try again in a few seconds.";
  if (error.status === 401) return "This service needs an API key; search again to enter one.";
  if (error.status === 429) return `Too many requests for this key; try again in ${error.retryAfter ?? "a few"} s.`;
  if (error.status === 503 && /database/i.test(error.message)) return "The database is unavailable right now; the service retries by itself, try again shortly.";
  return error.message;
}

async function refreshStatus() {
  try {
    const health = await fetch("/health").then((r) => r.json());
    const database = health.database === undefined ? "storage off" : health.database === "ok" ? "database ok" : "database unavailable";
    $("#status").textContent = health.status === "healthy" ? `Ready (${health.device}, ${database})` : health.status === "loading" ? "Model loading…" : `Unhealthy: ${health.detail ?? ""}`;
    if (health.status === "loading") setTimeout(refreshStatus, 2000);
  } catch {
    $("#status").textContent = "The service does not answer.";
  }
}

/** k, filter, min_score and mode from the options, grouped by product, or an error message. */
function options() {
  const k = Number($("#k").value || 12);
  const mode = $("#mode").value;
  const result = { k, group_by: "product", group_size: 3 };
  if (mode !== "vector") result.mode = mode;
  const filter = $("#filter").value.trim();
  if (filter) {
    const at = filter.indexOf("=");
    if (at <= 0) throw new Error("Write the filter as key = value, e.g. category = bags.");
    result.filter = { [filter.slice(0, at).trim()]: filter.slice(at + 1).trim() };
  }
  const minScore = $("#min-score").value.trim();
  if (minScore && mode !== "keyword") result.min_score = Number(minScore);
  return result;
}

/** Searches with these terms (replacing the query), and says what was searched as label. */
async function search(terms, label) {
  let settings;
  try {
    settings = options();
  } catch (error) {
    show(error.message, "error");
    return;
  }
  state.terms = terms;
  state.label = label;
  $("#refine-form").hidden = !terms.some((t) => t.image);
  show("Searching…");
  $("#results").replaceChildren();
  try {
    const body = await call("/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: terms, ...settings }) });
    render(body.results, label, settings.mode);
  } catch (error) {
    show(explain(error), "error");
  }
}

/** Adds a term to the current query ("this photo, but red"; more or less like an item) and searches again. */
function refine(term, label) {
  if (state.terms.length === 0) return search([term], label);
  return search([...state.terms, term], `${state.label} ${label}`);
}

function render(products, label, mode) {
  const list = $("#results");
  list.replaceChildren(...products.map((product) => card(product, mode)));
  show(products.length === 0 ? `No matching items for ${label}.` : `${products.length} results for ${label}.`);
  tagCards();
}

/** The labels typed once in the options, or none. */
function tagLabels() {
  return [...new Set($("#tag-labels").value.split(",").map((l) => l.trim()).filter((l) => l))];
}

/** Each result's top three tags for the typed labels (POST /classify on its stored vector; label embeddings are cached). */
async function tagCards() {
  const labels = tagLabels();
  if (labels.length < 2) return;
  for (const card of document.querySelectorAll('[data-testid="result"]')) {
    try {
      const body = await call("/classify", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ item_id: card.dataset.id, labels }) });
      const tags = document.createElement("div");
      tags.className = "tags";
      tags.dataset.testid = "tags";
      tags.textContent = body.labels.slice(0, 3).map((l) => `${l.label} ${Math.round(l.score * 100)}%`).join(" · ");
      card.querySelector(".meta")?.append(tags);
    } catch (error) {
      show(explain(error), "error");
      return;
    }
  }
}

/** The duplicate groups, each with its photos and the suggested keeper; resolving one asks first. */
async function findDuplicates() {
  const list = $("#duplicate-groups");
  list.replaceChildren();
  try {
    const page = await call("/duplicates?limit=100");
    $("#duplicates-summary").textContent = page.groups.length === 0
      ? "No duplicates found."
      : `${page.groups.length} group${page.groups.length === 1 ? "" : "s"}${page.next ? " (first 100)" : ""}` +
        (page.unscanned > 0 ? `; ${page.unscanned} items not checked yet (run the duplicates command)` : "");
    list.append(...page.groups.map(duplicateGroup));
  } catch (error) {
    show(explain(error), "error");
  }
}

function duplicateGroup(group) {
  const row = document.createElement("li");
  row.className = "group";
  row.dataset.testid = "duplicate-group";
  row.dataset.group = group.group;
  const title = document.createElement("div");
  title.className = "group-title";
  title.textContent = group.exact ? "Exact copies" : "Near duplicates";
  const photos = document.createElement("div");
  photos.className = "group-items";
  for (const item of group.items) {
    const figure = document.createElement("figure");
    figure.dataset.id = item.id;
    if (item.id === group.keep) figure.className = "keep";
    const image = document.createElement("img");
    image.alt = item.id;
    showImage(image, `/items/${encodeURIComponent(item.id)}/thumbnail`);
    image.onerror = () => image.replaceWith(Object.assign(document.createElement("div"), { className: "placeholder", textContent: "no image" }));
    const caption = document.createElement("figcaption");
    caption.textContent = item.id === group.keep ? `${item.id} · keep` : `${item.id} · ${item.distance.toFixed(4)}`;
    figure.append(image, caption);
    photos.append(figure);
  }
  const resolve = document.createElement("button");
  resolve.type = "button";
  resolve.className = "danger";
  resolve.dataset.testid = "resolve";
  const others = group.items.map((i) => i.id).filter((id) => id !== group.keep);
  resolve.textContent = `Keep ${group.keep}, delete ${others.length}`;
  resolve.addEventListener("click", () => resolveGroup(group.keep, others, row));
  row.append(title, photos, resolve);
  return row;
}

function resolveGroup(keep, remove, row) {
  const dialog = $("#resolve-dialog");
  $("#resolve-text").textContent = `Keep “${keep}” and delete ${remove.map((id) => `“${id}”`).join(", ")}? This cannot be undone.`;
  dialog.onclose = async () => {
    if (dialog.returnValue !== "delete") return;
    try {
      const result = await call("/duplicates/resolve", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ keep: [keep], delete: remove }) });
      row.remove();
      show(`Deleted ${result.deleted.length} duplicate${result.deleted.length === 1 ? "" : "s"} of “${keep}”.`);
    } catch (error) {
      show(explain(error), "error");
    }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

/** A product found: its best photo, how many of its photos matched, whether the words matched. */
function card(product, mode) {
  const result = product.items[0];
  const item = document.createElement("li");
  item.className = "card";
  item.dataset.testid = "result";
  item.dataset.id = result.id;
  if (product.product !== null) item.dataset.product = product.product;
  const open = document.createElement("button");
  open.className = "open";
  open.type = "button";
  open.setAttribute("aria-label", `Details of ${result.id}`);
  if (result.thumbnail_url) {
    const image = document.createElement("img");
    showImage(image, result.thumbnail_url);
    image.alt = result.id;
    image.loading = "lazy";
    open.append(image);
  } else {
    const placeholder = document.createElement("div");
    placeholder.className = "placeholder";
    placeholder.textContent = "no image";
    open.append(placeholder);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  const metadata = Object.entries(result.metadata ?? {}).map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`).join(", ");
  meta.innerHTML = `<div class="id"></div><div class="score"></div><div class="metadata"></div>`;
  meta.querySelector(".id").textContent = result.id;
  meta.querySelector(".score").textContent = `score ${result.score.toFixed(4)}`;
  meta.querySelector(".metadata").textContent = metadata;
  if (product.product !== null) {
    const group = document.createElement("div");
    group.className = "product";
    group.dataset.testid = "product";
    group.textContent = `${product.product} · ${product.items.length} photo${product.items.length === 1 ? "" : "s"} matched`;
    meta.prepend(group);
  }
  if (mode === "keyword" || product.items.some((i) => i.keyword_rank !== null && i.keyword_rank !== undefined)) {
    const words = document.createElement("div");
    words.className = "keyword-match";
    words.dataset.testid = "keyword-match";
    words.textContent = "matches your words";
    meta.append(words);
  }
  open.append(meta);
  open.addEventListener("click", () => details(result.id));
  const actions = document.createElement("div");
  actions.className = "actions";
  const more = document.createElement("button");
  more.type = "button";
  more.className = "more secondary";
  more.dataset.testid = "more-like-this";
  more.textContent = "More like this";
  more.addEventListener("click", () => refine({ item_id: result.id, weight: 1 }, `+ more like “${result.id}”`));
  const less = document.createElement("button");
  less.type = "button";
  less.className = "less secondary";
  less.dataset.testid = "less-like-this";
  less.textContent = "Less like this";
  less.addEventListener("click", () => refine({ item_id: result.id, weight: -1 }, `− less like “${result.id}”`));
  actions.append(more, less);
  item.append(open, actions);
  return item;
}

function moreLike(id) {
  setQueryPreview(null, `more like ${id}`);
  return search([{ item_id: id }], `more like “${id}”`);
}

function setQueryPreview(file, caption) {
  if (state.queryUrl) URL.revokeObjectURL(state.queryUrl);
  state.queryUrl = file ? URL.createObjectURL(file) : null;
  $("#query-preview").hidden = !file;
  if (file) $("#query-image").src = state.queryUrl;
  $("#query-caption").textContent = caption;
}

/** A file as a data: URI, the form an image term takes in a JSON query. */
function dataUri(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function searchPhoto(file) {
  if (!file || !file.type.startsWith("image/")) {
    show("That is not an image file.", "error");
    return;
  }
  setQueryPreview(file, file.name || "pasted image");
  await search([{ image: await dataUri(file) }], `the photo “${file.name || "pasted image"}”`);
}

async function details(id) {
  try {
    const item = await call(`/items/${encodeURIComponent(id)}`);
    $("#detail-title").textContent = item.id;
    const image = $("#detail-image");
    image.hidden = !item.thumbnail_url;
    if (item.thumbnail_url) {
      showImage(image, item.thumbnail_url);
      image.alt = item.id;
    }
    $("#detail-metadata").textContent = JSON.stringify({ metadata: item.metadata, model: item.model, variant: item.variant, updated_at: item.updated_at }, null, 2);
    $("#detail").dataset.id = item.id;
    $("#detail").showModal();
  } catch (error) {
    show(explain(error), "error");
  }
}

async function addProducts(event) {
  event.preventDefault();
  const files = [...$("#add-files").files];
  const results = $("#add-results");
  results.replaceChildren();
  if (files.length === 0) {
    show("Choose one or more images to add.", "error");
    return;
  }
  const metadata = $("#add-metadata").value.trim();
  if (metadata) {
    try {
      if (typeof JSON.parse(metadata) !== "object" || Array.isArray(JSON.parse(metadata))) throw new Error();
    } catch {
      show("The metadata must be a JSON object, e.g. {\"category\": \"bags\"}.", "error");
      return;
    }
  }
  const progress = $("#add-progress");
  progress.hidden = false;
  progress.max = files.length;
  progress.value = 0;
  let next = 0;
  async function worker() {
    while (next < files.length) {
      const file = files[next++];
      const line = document.createElement("li");
      const form = new FormData();
      form.append("file", file);
      if (metadata) form.append("metadata", metadata);
      try {
        const item = await send(`/items/${encodeURIComponent(file.name)}`, { method: "PUT", body: form });
        const body = await item.json();
        if (!item.ok) throw new Error(body.detail ?? `${item.status}`);
        line.textContent = `${file.name}: ${item.status === 201 ? "added" : "replaced"}`;
      } catch (error) {
        line.className = "failed";
        line.textContent = `${file.name}: ${explain(error)}`;
      }
      results.append(line);
      progress.value += 1;
    }
  }
  // A few at a time: the service batches them, and the page stays responsive.
  await Promise.all([worker(), worker(), worker()]);
  show(`Added ${results.querySelectorAll("li:not(.failed)").length} of ${files.length}.`);
}

document.addEventListener("DOMContentLoaded", () => {
  refreshStatus();
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("#query-text").value.trim();
    if (!text) {
      show("Type a few words, or choose a photo.", "error");
      return;
    }
    setQueryPreview(null, `“${text}”`);
    search([{ text }], `“${text}”`);
  });
  $("#refine-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("#refine-text").value.trim();
    if (!text) {
      show("Type the words to refine the photo with, e.g. “but red”.", "error");
      return;
    }
    const weight = Number($("#refine-sign").value);
    refine({ text, weight }, `${weight > 0 ? "+" : "−"} “${text}”`);
  });
  $("#query-file").addEventListener("change", (event) => searchPhoto(event.target.files[0]));
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = [...(event.dataTransfer?.files ?? [])].find((f) => f.type.startsWith("image/"));
    if (file) searchPhoto(file);
  });
  document.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
    if (file) searchPhoto(file);
  });
  $("#add-form").addEventListener("submit", addProducts);
  $("#find-duplicates").addEventListener("click", findDuplicates);
  $("#detail-close").addEventListener("click", () => $("#detail").close());
  $("#detail-more").addEventListener("click", () => {
    $("#detail").close();
    moreLike($("#detail").dataset.id);
  });
  $("#detail-delete").addEventListener("click", async () => {
    const id = $("#detail").dataset.id;
    try {
      await send(`/items/${encodeURIComponent(id)}`, { method: "DELETE" }).then((r) => { if (!r.ok && r.status !== 404) throw new Error(`${r.status}`); });
      $("#detail").close();
      document.querySelector(`[data-testid="result"][data-id="${CSS.escape(id)}"]`)?.remove();
      show(`Deleted “${id}”.`);
    } catch (error) {
      show(explain(error), "error");
    }
  });
});
