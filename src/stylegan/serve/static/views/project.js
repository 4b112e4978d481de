// Project: upload a photo, project it into the model's W (POST /api/project), follow the job (GET
// /api/project/ID every 400 ms: step, LPIPS, and the current image every few steps), then "Edit it" hands the
// latent to the Edit view. The job is cancelled by the Cancel button, by leaving the page, or by the server when
// nobody polls it any more.
import { cliLine, el, field, query } from "../common.js";

const POLL_MS = 400;

export const ProjectView = {
  id: "project",
  title: "Project",

  mount(root, app) {
    this.file = el("input", { type: "file", name: "photo", accept: "image/*", "aria-label": "photo" });
    this.steps = el("input", { type: "number", name: "steps", min: 1, max: app.project.max_steps,
      value: app.project.steps });
    const stepsField = field("W steps", this.steps, { format: () => "", hint: `${app.project.steps} by default so ` +
      "that a CPU answers in seconds to a minute; the paper's projector takes 1000 (better, slower)." });
    this.klass = field("Class", el("input", { type: "number", name: "class", min: 0, value: 0 }));
    this.start = el("button", { type: "button", class: "btn primary", name: "start", disabled: true }, "Project");
    this.cancel = el("button", { type: "button", class: "btn", name: "cancel", disabled: true }, "Cancel");
    this.editIt = el("button", { type: "button", class: "btn primary", name: "edit-it", disabled: true }, "Edit it →");
    this.file.addEventListener("change", () => { this.start.disabled = !this.file.files.length; });
    this.start.addEventListener("click", () => this.submit());
    this.cancel.addEventListener("click", () => this.stop());
    this.editIt.addEventListener("click", () => { app.views.edit.useProjection(this.job); app.select("edit"); });
    this.note = el("div", { class: "hint", "data-testid": "align-note" });
    const controls = el("section", { class: "card controls" }, el("h2", {}, "Project"),
      el("div", { class: "field" }, el("div", { class: "head" }, el("label", {}, "Photo")), this.file, this.note),
      stepsField.root, this.klass.root, el("div", { class: "row buttons" }, this.start, this.cancel));

    this.progress = el("progress", { max: 1, value: 0, "data-testid": "progress" });
    this.state = el("div", { class: "status", "data-testid": "state" }, "idle");
    this.error = el("div", { class: "error", role: "alert" });
    this.target = el("img", { alt: "target", "data-testid": "target" });
    this.image = el("img", { alt: "projection", "data-testid": "projection" });
    this.cli = cliLine();
    const pair = el("div", { class: "canvas pair-images" },
      el("figure", {}, this.target, el("figcaption", {}, "target (as projected)")),
      el("figure", {}, this.image, el("figcaption", {}, "projection")));
    const stageRoot = el("section", { class: "card stage" },
      el("div", { class: "stage-head" }, el("h2", {}, "Projection"), this.state), pair, this.progress, this.error,
      el("div", { class: "row buttons" }, this.editIt), this.cli.root);
    root.append(controls, stageRoot);
    Object.assign(this, { app, job: null, shownPreview: -1 });
    window.addEventListener("pagehide", () => {
      if (this.running()) navigator.sendBeacon(`/api/project/${this.job.id}/cancel`);
    });
  },

  setModel(model) {
    this.model = model;
    this.klass.root.hidden = model.c_dim === 0;
    this.klass.input.max = Math.max(0, model.c_dim - 1);
    this.note.textContent = model.face
      ? "A face model: the largest face is aligned (needs the faces extra), else the photo is centre-cropped."
      : "The photo is centre-cropped and resized to the model's resolution.";
    for (const img of [this.target, this.image]) {
      img.classList.toggle("pixelated", model.resolution < 256);
      img.style.width = `${Math.max(model.resolution, Math.min(256, model.resolution * 8))}px`;
    }
  },

  refresh() {},

  running() {
    return this.job !== null && ["queued", "running"].includes(this.job.state);
  },

  async submit() {
    this.error.textContent = "";
    const params = { model: this.model.key, steps: this.steps.value };
    if (this.model.c_dim > 0) params.class = this.klass.input.value;
    let response;
    try {
      response = await fetch(`/api/project?${query(params)}`, { method: "POST", body: this.file.files[0] });
    } catch (err) {
      this.error.textContent = `no answer from the server (${err.message})`;
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      this.error.textContent = body.error || response.statusText;
      return;
    }
    this.shownPreview = -1;
    this.image.removeAttribute("src");
    this.target.src = `/api/project/${body.id}/target.png`;
    this.show(body);
    this.poll();
  },

  async stop() {
    if (this.running()) await fetch(`/api/project/${this.job.id}/cancel`, { method: "POST" });
  },

  async poll() {
    while (this.running()) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      try {
        const response = await fetch(`/api/project/${this.job.id}`);
        if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
        this.show(await response.json());
      } catch (err) {
        this.error.textContent = `lost the projection (${err.message})`;
        this.job = null;
      }
    }
  },

  show(job) {
    this.job = job;
    const running = this.running();
    this.start.disabled = running || !this.file.files.length;
    this.cancel.disabled = !running;
    this.editIt.disabled = job.state !== "done";
    this.progress.max = job.steps;
    this.progress.value = job.step;
    const lpips = job.lpips === null ? "" : ` · LPIPS ${job.lpips.toFixed(3)}`;
    this.state.textContent = `${job.state} · step ${job.step}/${job.steps}${lpips} · ${job.seconds.toFixed(1)} s`;
    this.state.dataset.state = job.state;
    this.state.classList.toggle("busy", running);
    this.note.textContent = `Target: ${job.note}.`;
    if (job.error) this.error.textContent = job.error;
    this.cli.code.textContent = job.command;
    if (job.preview !== this.shownPreview && job.preview > 0) {
      this.shownPreview = job.preview;
      this.image.src = `/api/project/${job.id}/preview.png?v=${job.preview}`;
      this.image.dataset.version = String(job.preview);
      this.image.dataset.state = job.state;
    }
  },
};
