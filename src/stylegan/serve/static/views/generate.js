// Generate: one image from a seed, following the sliders live (GET /api/generate.png).
import { el, field, query, range, stage, truncationControls } from "../common.js";

const MAX_SEED = 4294967295;

export const GenerateView = {
  id: "generate",
  title: "Generate",

  mount(root, app) {
    const update = () => this.refresh();
    const seedNumber = el("input", { type: "number", name: "seed", min: 0, max: MAX_SEED, value: 0 });
    const seedSlider = range("seed-slider", 0, 999, 1, 0);
    const dice = el("button", { type: "button", class: "btn", title: "A random seed" }, "Random");
    seedSlider.addEventListener("input", () => { seedNumber.value = seedSlider.value; update(); });
    seedNumber.addEventListener("input", () => { seedSlider.value = seedNumber.value; update(); });
    dice.addEventListener("click", () => {
      seedNumber.value = Math.floor(Math.random() * 100000);
      seedSlider.value = seedNumber.value;
      update();
    });
    const seed = el("div", { class: "field" }, el("div", { class: "head" }, el("label", {}, "Seed")),
      el("div", { class: "row" }, seedNumber, dice), seedSlider);

    this.trunc = truncationControls(update);
    const tx = field("Translate x", range("tx", -0.5, 0.5, 0.01, 0), { format: (v) => Number(v).toFixed(2) });
    const ty = field("Translate y", range("ty", -0.5, 0.5, 0.01, 0), { format: (v) => Number(v).toFixed(2) });
    const rotate = field("Rotate", range("rotate", -180, 180, 1, 0), { format: (v) => `${v}°` });
    for (const f of [tx, ty, rotate]) f.input.addEventListener("input", update);
    this.sg3 = el("fieldset", {}, el("legend", {}, "StyleGAN3 transform"), tx.root, ty.root, rotate.root);
    this.transform = { tx, ty, rotate };

    this.stage = stage("Image", null);
    const controls = el("section", { class: "card controls" }, el("h2", {}, "Generate"), seed, ...this.trunc.roots,
      this.sg3);
    root.append(controls, this.stage.root);
    Object.assign(this, { app, seedNumber });
  },

  setModel(model) {
    this.model = model;
    this.trunc.setModel(model);
    this.sg3.hidden = !model.sg3;
    for (const f of Object.values(this.transform)) { f.input.value = 0; f.update(); }
    this.stage.img.classList.toggle("pixelated", model.resolution < 256);
    this.stage.img.style.width = `${Math.max(model.resolution, Math.min(384, model.resolution * 12))}px`;
  },

  refresh() {
    if (!this.model) return;
    const params = { model: this.model.key, seed: this.seedNumber.value || 0, ...this.trunc.params(this.model) };
    if (this.model.sg3) {
      for (const [name, f] of Object.entries(this.transform)) params[name] = f.input.value;
    }
    this.stage.live.show(`/api/generate.png?${query(params)}`);
  },
};
