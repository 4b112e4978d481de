// Mix: the style-mixing grid of the StyleGAN paper (Fig. 3) (GET /api/mix.png).
import { el, field, query, range, stage, truncationControls } from "../common.js";

export const MixView = {
  id: "mix",
  title: "Mix",

  mount(root, app) {
    const update = () => this.refresh();
    const rows = field("Row seeds (sources A)", el("input", { type: "text", name: "rows", value: "85,100,75,458" }),
      { format: () => "", hint: "up to 8, e.g. 1-4,10" });
    const cols = field("Column seeds (sources B)", el("input", { type: "text", name: "cols", value: "55,821,1789,293" }),
      { format: () => "", hint: "up to 8" });
    for (const f of [rows, cols]) f.input.addEventListener("input", update);

    const first = range("styles-from", 0, 1, 1, 0);
    const last = range("styles-to", 0, 1, 1, 0);
    const shown = el("span", { class: "value" });
    const syncLayers = (moved, quiet = false) => {
      if (Number(first.value) > Number(last.value)) (moved === first ? last : first).value = moved.value;
      shown.textContent = first.value === last.value ? `ws ${first.value}` : `ws ${first.value}–${last.value}`;
      if (!quiet) update();
    };
    this.setLayers = (idx, quiet) => {
      first.value = idx[0]; last.value = idx[idx.length - 1];
      syncLayers(first, quiet);
    };
    first.addEventListener("input", () => syncLayers(first));
    last.addEventListener("input", () => syncLayers(last));
    const presets = el("div", { class: "seg", role: "group", "aria-label": "layer groups" });
    for (const group of ["coarse", "middle", "fine"]) {
      presets.append(el("button", { type: "button", "data-group": group, onclick: () => {
        if (this.model.groups[group].length) this.setLayers(this.model.groups[group], false);
      } }, group));
    }
    const layers = el("div", { class: "field" }, el("div", { class: "head" }, el("label", {}, "B's styles in layers"),
      shown), presets, el("div", { class: "row pair" }, el("label", {}, "from", first), el("label", {}, "to", last)),
      el("div", { class: "hint" }, "coarse: pose and shape; fine: colours and texture"));

    this.trunc = truncationControls(update);
    this.stage = stage("Style mixing", "Top row: sources B. Left column: sources A. Each cell: A with B's styles " +
      "in the chosen layers.");
    root.append(el("section", { class: "card controls" }, el("h2", {}, "Mix"), rows.root, cols.root, layers,
      ...this.trunc.roots), this.stage.root);
    Object.assign(this, { app, rows, cols, first, last, presets });
  },

  setModel(model) {
    this.model = model;
    this.trunc.setModel(model);
    for (const r of [this.first, this.last]) r.max = model.num_ws - 1;
    for (const b of this.presets.children) b.disabled = !model.groups[b.dataset.group].length;
    this.stage.img.classList.toggle("pixelated", model.resolution < 256);
    this.stage.img.style.width = "100%";
    this.stage.img.style.maxWidth = `${Math.max(model.resolution * 5, 720)}px`;
    const { coarse, middle, fine } = model.groups;
    this.setLayers(coarse.length ? coarse : middle.length ? middle : fine, true);
  },

  refresh() {
    if (!this.model) return;
    const styles = `${this.first.value}-${this.last.value}`;
    const params = { model: this.model.key, rows: this.rows.value(), cols: this.cols.value(), styles,
      ...this.trunc.params(this.model) };
    this.stage.live.show(`/api/mix.png?${query(params)}`);
  },
};
