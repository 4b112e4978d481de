// Check: upload any image (POST /api/check) and read what `stylegan detect` says: the invisible provenance mark,
// the metadata, C2PA content credentials, the detectors' p(generated) with their calibration note, and the spectrum.
// The uploaded image is shown from the file the browser already has; the server sends back only its plots.
import { cliLine, el } from "../common.js";

// A file name as one shell word (POSIX quoting), for the CLI line.
function shellWord(name) {
  return /^[\w.,@+=:/-]+$/.test(name) ? name : `'${name.replaceAll("'", "'\\''")}'`;
}

export const CheckView = {
  id: "check",
  title: "Check",

  mount(root, app) {
    this.file = el("input", { type: "file", name: "image", accept: "image/*", "aria-label": "image" });
    this.file.addEventListener("change", () => this.check());
    const controls = el("section", { class: "card controls" }, el("h2", {}, "Check"),
      el("div", { class: "field" }, el("div", { class: "head" }, el("label", {}, "Image")), this.file,
        el("div", { class: "hint" }, "Any PNG, JPEG, WebP, GIF, BMP or PGM/PPM. It is checked on this machine and " +
          "not kept.")),
      el("p", { class: "hint" }, "The mark is invisible and survives resizing and JPEG; metadata and C2PA are lost " +
        "when a file is re-saved; the detectors guess from the pixels alone."));

    this.status = el("div", { class: "status", "data-testid": "state" });
    this.error = el("div", { class: "error", role: "alert" });
    this.headline = el("p", { class: "headline", "data-testid": "headline" });
    this.credentials = el("p", { class: "headline", "data-testid": "c2pa" });
    this.picture = el("img", { alt: "uploaded image", "data-testid": "upload" });
    this.pictureCaption = el("figcaption", {}, "the image");
    this.picture.addEventListener("load", () => { this.pictureCaption.textContent = "the image"; });
    this.picture.addEventListener("error", () => {
      this.pictureCaption.textContent = "(this browser cannot show the file's format; it was checked all the same)";
    });
    this.spectrum = el("img", { alt: "log power spectrum", "data-testid": "spectrum" });
    this.profile = el("img", { alt: "radial profile", "data-testid": "profile" });
    this.table = el("table", { class: "verdicts", "data-testid": "verdicts" });
    this.calibration = el("p", { class: "caption", "data-testid": "calibration" });
    this.cli = cliLine();
    const pictures = el("div", { class: "canvas pair-images" },
      el("figure", {}, this.picture, this.pictureCaption),
      el("figure", {}, this.spectrum, el("figcaption", {}, "spectrum of the high-pass residual")),
      el("figure", {}, this.profile, el("figcaption", {}, "radial profile: black this image; green real, red " +
        "generated (detector's training means)")));
    root.append(controls, el("section", { class: "card stage" },
      el("div", { class: "stage-head" }, el("h2", {}, "Verdict"), this.status), this.error, this.headline,
      this.credentials, this.table, this.calibration, pictures, this.cli.root));
  },

  setModel() {},

  refresh() {},

  async check() {
    const file = this.file.files[0];
    if (!file) return;
    this.error.textContent = "";
    this.status.textContent = "checking";
    this.status.classList.add("busy");
    this.status.dataset.state = "checking";
    if (this.picture.src.startsWith("blob:")) URL.revokeObjectURL(this.picture.src);
    this.picture.src = URL.createObjectURL(file);
    try {
      const response = await fetch("/api/check", { method: "POST", body: file });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || response.statusText);
      this.show(body, file.name);
    } catch (err) {
      this.error.textContent = err.message;
      this.status.textContent = "";
      this.table.replaceChildren();
    } finally {
      this.status.classList.remove("busy");
      this.status.dataset.state = "done";
    }
  },

  show(report, name) {
    this.headline.textContent = headline(report);
    this.headline.dataset.verdict = report.mark.found ? "marked" : report.metadata.ai_generated ? "declared" : "none";
    const state = c2paState(report.c2pa);
    this.credentials.textContent = credentialsLine(report.c2pa, state);
    this.credentials.dataset.c2pa = state;
    this.credentials.style.color = state === "invalid" ? "#b00" : state === "trusted" ? "#070" : "";
    this.table.replaceChildren(...report.verdicts.map(([label, text]) =>
      el("tr", { "data-label": label }, el("th", {}, label), el("td", {}, text))));
    this.calibration.textContent = report.detector && report.detector.note ? `Calibration: ${report.detector.note}` : "";
    this.spectrum.src = report.spectrum;
    this.profile.src = report.profile;
    this.status.textContent = `${report.format} ${report.size[0]}×${report.size[1]}`;
    this.cli.code.textContent = `stylegan detect ${shellWord(name)}`;
  },
};

// What the C2PA verdict is: "trusted", "untrusted" (verifies, signer not vouched for), "invalid", "none" or
// "unchecked" (no c2pa extra on the server).
function c2paState(c2pa) {
  if (c2pa.status === "valid") return c2pa.trusted ? "trusted" : "untrusted";
  if (c2pa.status === "invalid") return "invalid";
  return c2pa.status === "none" ? "none" : "unchecked";
}

// One sentence on the content credentials, from the verdict `stylegan detect` prints.
function credentialsLine(c2pa, state) {
  const signer = c2pa.signer ? `CN=${c2pa.signer}` : "an unnamed signer";
  switch (state) {
    case "trusted":
      return `Content credentials (C2PA): valid, signed by a trusted signer (${signer}).`;
    case "untrusted":
      return `Content credentials (C2PA): the signature is valid but the signer (${signer}) is not trusted` +
        (c2pa.anchors ? " (not issued under the server's trust anchors)." :
          " (the server has no trust anchors: STYLEGAN_TRUST_ANCHORS).");
    case "invalid":
      return `Content credentials (C2PA) are invalid: the file was changed after signing or the certificate is ` +
        `bad (${c2pa.verdict.replace(/^invalid: /, "")}).`;
    case "unchecked":
      return "Content credentials (C2PA) were not checked: the server lacks the c2pa extra.";
    default:
      return "No content credentials (C2PA).";
  }
}

function headline(report) {
  if (report.mark.found) return `Made by stylegan: the provenance mark is there (seed ${report.mark.seed}).`;
  if (report.c2pa.status === "valid") return "Signed content credentials (C2PA) are attached.";
  if (report.c2pa.status === "invalid") return "Content credentials (C2PA) are attached but do not verify.";
  if (report.metadata.ai_generated) return "The metadata says AI-generated, but no mark was found.";
  const p = report.detector && report.detector.p_generated;
  if (p) {
    const most = Math.max(...Object.values(p));
    return `No provenance found. The detectors' highest p(generated) is ${most.toFixed(2)}.`;
  }
  return "No provenance found.";
}
