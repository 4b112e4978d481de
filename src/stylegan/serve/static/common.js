// Small helpers shared by the views: DOM building, controls, and LiveImage (an <img> that follows parameters).

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// A labelled control: {root, input, value()}; `format` shows the current value beside the label.
export function field(label, input, { format = (v) => v, hint = null } = {}) {
  const shown = el("span", { class: "value" });
  const update = () => { shown.textContent = format(input.value); };
  input.addEventListener("input", update);
  update();
  const root = el("div", { class: "field" }, el("div", { class: "head" }, el("label", {}, label), shown), input,
    hint ? el("div", { class: "hint" }, hint) : null);
  return { root, input, update, value: () => input.value };
}

export function range(name, min, max, step, value) {
  return el("input", { type: "range", name, min, max, step, value, "aria-label": name });
}

// Segmented buttons standing for a <select>: .value, and an "input" event on change.
export function segmented(name, options, value) {
  const root = el("div", { class: "seg", role: "group", "aria-label": name, "data-name": name });
  root.value = value;
  for (const option of options) {
    const button = el("button", { type: "button", "data-value": option, "aria-pressed": String(option === value) },
      option);
    button.addEventListener("click", () => {
      root.value = option;
      for (const b of root.children) b.setAttribute("aria-pressed", String(b === button));
      root.dispatchEvent(new Event("input"));
    });
    root.append(button);
  }
  return root;
}

// Truncation controls both views share: psi, cutoff, class (conditional models), noise mode.
export function truncationControls(onChange) {
  const psi = field("Truncation ψ", range("psi", -1, 2, 0.05, 1), { format: (v) => Number(v).toFixed(2),
    hint: "1 = off; towards 0 = closer to the average image" });
  let numWs = 1;
  const cutoff = field("Truncation cutoff", range("cutoff", 0, 1, 1, 1),
    { format: (v) => (Number(v) >= numWs ? `all ${numWs}` : v), hint: "truncate only the first N ws" });
  const klass = field("Class", el("input", { type: "number", name: "class", min: 0, value: 0 }));
  const noise = field("Noise", segmented("noise", ["const", "random", "none"], "const"),
    { hint: "const: the model's stored noise (same image every time)" });
  for (const f of [psi, cutoff, klass, noise]) f.input.addEventListener("input", onChange);
  return {
    roots: [psi.root, cutoff.root, klass.root, noise.root],
    setModel(model) {
      numWs = model.num_ws;
      psi.input.value = model.psi;
      cutoff.input.max = model.num_ws;
      cutoff.input.value = model.cutoff;
      klass.root.hidden = model.c_dim === 0;
      klass.input.max = Math.max(0, model.c_dim - 1);
      klass.input.value = 0;
      psi.update();
      cutoff.update();
    },
    params(model) {
      const p = { psi: psi.input.value, cutoff: cutoff.input.value, noise: noise.input.value };
      if (model.c_dim > 0) p.class = klass.input.value;
      return p;
    },
  };
}

// The "copy as CLI command" line under a view's image.
export function cliLine() {
  const code = el("code", { class: "cli-command", "data-testid": "cli" });
  const copy = el("button", { type: "button", class: "btn", title: "Copy the command" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(code.textContent);
      copy.textContent = "Copied";
    } catch {
      const sel = window.getSelection();
      sel.selectAllChildren(code);
      copy.textContent = "Selected";
    }
    setTimeout(() => { copy.textContent = "Copy"; }, 1200);
  });
  return { root: el("div", { class: "cli" }, code, copy), code };
}

// An <img> that shows the PNG of the latest parameters: requests are debounced, at most one is in flight, and
// while one is, only the newest pending URL is kept (a fast slider never builds a queue).
export class LiveImage {
  constructor(img, { status, error, cli, delay = 40 }) {
    Object.assign(this, { img, status, error, cli, delay });
    this.timer = null; this.inflight = false; this.pending = null; this.shown = null;
  }

  show(url) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.queue(url), this.delay);
  }

  queue(url) {
    if (this.inflight) { this.pending = url; return; }
    if (url !== this.shown) this.fetch(url);
  }

  async fetch(url) {
    this.inflight = true;
    this.status.textContent = "rendering";
    this.status.classList.add("busy");
    const started = performance.now();
    let retry = false;
    try {
      const response = await fetch(url);
      if (response.status === 429) retry = true;
      else if (!response.ok) this.error.textContent = (await response.json().catch(() => ({}))).error || response.statusText;
      else await this.display(url, response, started);
    } catch (err) {
      this.error.textContent = `no answer from the server (${err.message})`;
    } finally {
      this.inflight = false;
      this.status.classList.remove("busy");
      const next = this.pending || (retry ? url : null);
      this.pending = null;
      if (next) setTimeout(() => this.queue(next), retry ? 250 : 0);
    }
  }

  async display(url, response, started) {
    const blob = await response.blob();
    const objectUrl = URL.createObjectURL(blob);
    const previous = this.img.src;
    this.img.src = objectUrl;
    await this.img.decode();
    if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
    this.shown = url;
    this.img.dataset.query = url;
    this.error.textContent = "";
    this.cli.textContent = decodeURIComponent(response.headers.get("x-stylegan-command") || "");
    this.status.textContent = `${Math.round(performance.now() - started)} ms`;
  }
}

// The image area of a view: the image, a status corner, an error line, the CLI line.
export function stage(title, caption) {
  const img = el("img", { alt: title, "data-testid": "image" });
  const status = el("div", { class: "status" });
  const error = el("div", { class: "error", role: "alert" });
  const cli = cliLine();
  const root = el("section", { class: "card stage" }, el("div", { class: "stage-head" }, el("h2", {}, title), status),
    el("div", { class: "canvas" }, img), error, caption ? el("p", { class: "caption" }, caption) : null,
    cli.root);
  return { root, img, live: new LiveImage(img, { status, error, cli: cli.code }) };
}

export function query(params) {
  return new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined)).toString();
}
