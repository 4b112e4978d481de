// Edit: a seed, or a projected photo's latent, moved along a SeFa or GANSpace direction (GET /api/edit.png).
// The image follows the strength slider live; the CLI line is the `stylegan edit` command that writes it.
import { el, field, query, range, segmented, stage, truncationControls } from "../common.js";

const MAX_SEED = 4294967295;
const DIRECTIONS = ["sefa", "ganspace"].flatMap((method) => [...Array(10).keys()].map((k) => `${method}:${k}`));

export const EditView = {
  id: "edit",
  title: "Edit",

  mount(root, app) {
    const update = () => this.refresh();
    this.source = segmented("source", ["seed", "projection"], "seed");
    this.source.addEventListener("input", () => { this.showSource(); update(); });
    this.seed = el("input", { type: "number", name: "seed", min: 0, max: MAX_SEED, value: 0 });
    this.seed.addEventListener("input", update);
    this.seedField = el("div", { class: "field" }, el("div", { class: "head" }, el("label", {}, "Seed")), this.seed);
    this.projectionNote = el("div", { class: "hint", "data-testid": "projection-note" }, "No projection yet: " +
      "project a photo in the Project view, then press “Edit it”.");
    this.download = el("a", { class: "btn", download: "projected_w.npz", hidden: true }, "Download projected_w.npz");
    const sourceField = el("div", { class: "field" }, el("div", { class: "head" }, el("label", {}, "Source")),
      this.source, this.projectionNote, this.download);

    const direction = el("select", { name: "direction", class: "small", "aria-label": "direction" },
      ...DIRECTIONS.map((d) => el("option", { value: d }, d.replace("sefa:", "SeFa ").replace("ganspace:", "GANSpace "))));
    direction.addEventListener("change", update);
    const directionField = field("Direction", direction, { format: () => "", hint: "SeFa: from the style weights " +
      "(closed form). GANSpace: principal axes of sampled w; its first use per model takes a few seconds." });
    this.strength = field("Strength", range("strength", -5, 5, 0.1, 0),
      { format: (v) => Number(v).toFixed(1), hint: "in standard deviations of the model's w along the direction" });
    this.strength.input.addEventListener("input", update);
    this.layers = segmented("layers", ["all", "coarse", "middle", "fine"], "all");
    this.layers.addEventListener("input", update);
    const layersField = field("Layers", this.layers, { format: () => "",
      hint: "coarse: pose and shape; middle: features; fine: colours and texture" });

    this.trunc = truncationControls(update);
    this.stage = stage("Edited image", null);
    root.append(el("section", { class: "card controls" }, el("h2", {}, "Edit"), sourceField, this.seedField,
      directionField.root, this.strength.root, layersField.root, ...this.trunc.roots), this.stage.root);
    Object.assign(this, { app, direction, projection: null });
    this.showSource();
  },

  // Called by the Project view: edit the latent of projection `job` (its model becomes the current one).
  useProjection(job) {
    this.projection = job;
    this.app.pickModel(job.model);
    this.showSource();  // enables the "projection" button
    this.source.querySelector("[data-value=projection]").click();
  },

  showSource() {
    const fromProjection = this.source.value === "projection" && this.projection !== null;
    if (this.source.value === "projection" && !fromProjection) this.source.querySelector("[data-value=seed]").click();
    this.seedField.hidden = fromProjection;
    for (const r of this.trunc.roots.slice(0, 3)) r.classList.toggle("off", fromProjection);
    this.source.querySelector("[data-value=projection]").disabled = this.projection === null;
    this.download.hidden = !fromProjection;
    if (this.projection) {
      this.download.href = `/api/project/${this.projection.id}/projected_w.npz`;
      this.projectionNote.textContent = `Projected photo (model ${this.projection.model}, ` +
        `${this.projection.steps} steps, LPIPS ${Number(this.projection.lpips).toFixed(3)}). The CLI line reads ` +
        "its projected_w.npz.";
    }
  },

  setModel(model) {
    this.model = model;
    this.trunc.setModel(model);
    if (this.projection && this.projection.model !== model.key) {
      this.projection = null;
      this.projectionNote.textContent = "The projection belongs to another model; project again for this one.";
    }
    for (const b of this.layers.children) {
      b.disabled = b.dataset.value !== "all" && !model.groups[b.dataset.value].length;
    }
    if (this.layers.querySelector("[aria-pressed=true]").disabled) this.layers.firstChild.click();
    this.showSource();
    this.stage.img.classList.toggle("pixelated", model.resolution < 256);
    this.stage.img.style.width = `${Math.max(model.resolution, Math.min(384, model.resolution * 12))}px`;
  },

  refresh() {
    if (!this.model) return;
    const params = { model: this.model.key, direction: this.direction.value, strength: this.strength.input.value,
      layers: this.layers.value, ...this.trunc.params(this.model) };
    if (this.source.value === "projection" && this.projection) params.projection = this.projection.id;
    else params.seed = this.seed.value || 0;
    this.stage.live.show(`/api/edit.png?${query(params)}`);
  },
};
