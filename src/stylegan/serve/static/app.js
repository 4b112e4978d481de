// The page shell: tabs, the model picker, and the views. A view is a module exporting
// {id, title, mount(root, app), setModel(model), refresh()}; adding one (Edit, Project, Check) is one line in VIEWS.
// setModel only lays out the controls; the visible view alone renders (refresh), and a view renders when shown.
import { el } from "./common.js";
import { GenerateView } from "./views/generate.js";
import { MixView } from "./views/mix.js";

const VIEWS = [GenerateView, MixView];

async function main() {
  const response = await fetch("/api/models");
  const { models } = await response.json();
  const picker = document.getElementById("model");
  for (const m of models) picker.append(el("option", { value: m.key }, m.label));
  const tabs = document.getElementById("tabs");
  const sections = {};
  for (const view of VIEWS) {
    sections[view.id] = el("div", { class: "view", id: `view-${view.id}`, "data-view": view.id, hidden: true });
    document.getElementById("views").append(sections[view.id]);
    view.mount(sections[view.id], { models });
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
