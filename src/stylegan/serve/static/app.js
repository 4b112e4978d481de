// The page shell: tabs, the model picker, and the views. A view is a module exporting
// {id, title, mount(root, app), setModel(model), refresh()}; adding one is one line in VIEWS.
// setModel only lays out the controls; the visible view alone renders (refresh), and a view renders when shown.
// `app` gives views what they share: the models, the server's projection settings, select(id) and pickModel(key)
// (the Project view hands its result to the Edit view with these).
import { el } from "./common.js";
import { CheckView } from "./views/check.js";
import { EditView } from "./views/edit.js";
import { GenerateView } from "./views/generate.js";
import { MixView } from "./views/mix.js";
import { ProjectView } from "./views/project.js";

const VIEWS = [GenerateView, MixView, EditView, ProjectView, CheckView];

async function main() {
  const response = await fetch("/api/models");
  const { models, project } = await response.json();
  const picker = document.getElementById("model");
  for (const m of models) picker.append(el("option", { value: m.key }, m.label));
  const tabs = document.getElementById("tabs");
  const sections = {};
  const app = { models, project, views: Object.fromEntries(VIEWS.map((v) => [v.id, v])), select, pickModel };
  for (const view of VIEWS) {
    sections[view.id] = el("div", { class: "view", id: `view-${view.id}`, "data-view": view.id, hidden: true });
    document.getElementById("views").append(sections[view.id]);
    view.mount(sections[view.id], app);
    tabs.append(el("button", { type: "button", role: "tab", "data-view": view.id, onclick: () => select(view.id) },
      view.title));
  }
  const setModel = () => {
    const model = models.find((m) => m.key === picker.value);
    document.getElementById("model-facts").textContent =
      `· ${model.resolution}² ${model.channels === 1 ? "grey" : "RGB"}, ${model.num_ws} ws` +
      (model.c_dim ? `, ${model.c_dim} classes` : "");
    for (const view of VIEWS) view.setModel(model);
    active.refresh();
  };
  function pickModel(key) {
    if (picker.value === key) return;
    picker.value = key;
    setModel();
  }
  picker.addEventListener("change", setModel);
  select(location.hash.slice(1) in sections ? location.hash.slice(1) : VIEWS[0].id, false);
  setModel();
}

let active = VIEWS[0];

function select(id, render = true) {
  active = VIEWS.find((v) => v.id === id);
  if (render) active.refresh();
  for (const section of document.querySelectorAll(".view")) section.hidden = section.dataset.view !== id;
  for (const tab of document.querySelectorAll("#tabs button")) tab.setAttribute("aria-selected", tab.dataset.view === id);
  history.replaceState(null, "", `#${id}`);
}

main();
