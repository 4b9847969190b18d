/** The class tree editor (admins): add under a class, rename inline, colour, hotkey, move
 * by dragging or by the arrows, merge into another class (asked with the number of labels
 * that will move), delete; the history of changes below. Every change is one API call and
 * the tree is read again after it, so what the page shows is what the server holds. */
import { byId, call, el, toast } from "../lib/api";
import "../styles/taxonomy.css";
import { ClassTree, type SuggestedClass, suggestionRows, type TreeNode } from "../taxonomy/tree";

interface ClassEvent {
  id: number;
  class_name: string;
  action: string;
  actor: string | null;
  details: Record<string, unknown>;
  created_at: string;
}

const root = byId("taxonomy");
const projectId = root.dataset.projectId;
const classesUrl = `/api/projects/${projectId}/label-classes/`;
const list = byId("class-tree");
const top = byId("tree-top");
const addForm = byId<HTMLFormElement>("tree-add");
const historyBody = byId("tree-history");
let tree = new ClassTree([]);
let suggested: SuggestedClass[] = [];

async function reload(): Promise<void> {
  tree = new ClassTree((await call<{ classes: TreeNode[] }>("GET", `${classesUrl}tree/`)).classes);
  render();
  renderSuggestions();
  loadHistory().catch((error) => toast(`Could not load the history: ${(error as Error).message}`, "error"));
}

/** Runs one change, says what happened, and shows the tree as it is now (also on a refusal). */
async function change(work: () => Promise<unknown>, done: string): Promise<void> {
  try {
    await work();
    toast(done);
  } catch (error) {
    toast((error as Error).message, "error");
  }
  await reload();
}

const patch = (node: TreeNode, body: Record<string, unknown>, done: string) =>
  change(() => call("PATCH", `${classesUrl}${node.id}/`, body), done);

function moveTo(node: TreeNode, parent: number | null): Promise<void> {
  const where = parent === null ? "the top level" : `"${tree.get(parent).name}"`;
  return patch(node, { parent }, `Moved "${node.name}" under ${where}.`);
}

function nameInput(node: TreeNode): HTMLInputElement {
  const input = el("input", { class: "tree-name", value: node.name, maxlength: "100", "aria-label": `name of ${node.name}` });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") input.blur();
    if (e.key === "Escape") {
      input.value = node.name;
      input.blur();
    }
  });
  input.addEventListener("change", () => {
    if (input.value.trim() && input.value.trim() !== node.name) {
      void patch(node, { name: input.value }, `Renamed "${node.name}" to "${input.value.trim()}".`);
    } else input.value = node.name;
  });
  return input;
}

function choice(label: string, options: TreeNode[], onPick: (id: number) => void): HTMLSelectElement {
  const select = el("select", { "aria-label": label }, el("option", { value: "" }, label),
    ...options.map((option) => el("option", { value: String(option.id) }, [...option.path, option.name].join(" / "))));
  select.addEventListener("change", () => {
    const picked = Number(select.value);
    select.value = "";
    if (picked) onPick(picked);
  });
  return select;
}

function childForm(node: TreeNode, item: HTMLElement): void {
  if (item.querySelector(".tree-child-form")) return;
  const input = el("input", { name: "name", required: "", maxlength: "100", "aria-label": `new class under ${node.name}` });
  const form = el("form", { class: "row tree-child-form" }, input, el("button", { type: "submit" }, "Add"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void change(() => call("POST", classesUrl, { name: input.value, parent_id: node.id }),
      `Added "${input.value.trim()}" under "${node.name}".`);
  });
  item.append(form);
  input.focus();
}

function nodeRow(node: TreeNode): HTMLLIElement {
  const item = el("li", { class: "tree-node", "data-class-id": String(node.id), "data-name": node.name });
  item.style.setProperty("--depth", String(node.depth));
  const handle = el("span", { class: "tree-handle", draggable: "true", title: "drag onto another class", "aria-hidden": "true" }, "⠿");
  handle.addEventListener("dragstart", (e) => {
    e.dataTransfer?.setData("text/plain", String(node.id));
    item.classList.add("dragging");
  });
  handle.addEventListener("dragend", () => item.classList.remove("dragging"));
  dropTarget(item, node.id);

  const color = el("input", { type: "color", value: node.color, "aria-label": `colour of ${node.name}` });
  color.addEventListener("change", () => void patch(node, { color: color.value }, `New colour for "${node.name}".`));
  const hotkey = el("input", { class: "tree-key", value: node.hotkey, maxlength: "1", size: "2", "aria-label": `hotkey of ${node.name}` });
  hotkey.addEventListener("change", () => void patch(node, { hotkey: hotkey.value },
    hotkey.value ? `"${node.name}" has key ${hotkey.value.toLowerCase()}.` : `"${node.name}" has no key.`));

  const button = (text: string, title: string, action: () => void, attrs: Record<string, string> = {}) => {
    const b = el("button", { type: "button", title, "aria-label": `${title}: ${node.name}`, ...attrs }, text);
    b.addEventListener("click", action);
    return b;
  };
  const up = tree.outdentTarget(node.id);
  const down = tree.indentTarget(node.id);
  const controls = el("span", { class: "tree-controls" },
    button("+ child", "add a class under it", () => childForm(node, item)),
    button("←", "a level up", () => up !== undefined && void moveTo(node, up), up === undefined ? { disabled: "" } : {}),
    button("→", "a level down", () => down !== undefined && void moveTo(node, down), down === undefined ? { disabled: "" } : {}),
    choice("Move under…", tree.moveTargets(node.id), (id) => void moveTo(node, id)),
    choice("Merge into…", tree.mergeTargets(node.id), (id) => {
      if (!window.confirm(tree.mergeQuestion(node.id, id))) return;
      void change(() => call("POST", `${classesUrl}${node.id}/merge/`, { target: id }),
        `Merged "${node.name}" into "${tree.get(id).name}".`);
    }),
    button("Delete", "delete", () => {
      if (!window.confirm(`Delete "${node.name}"?`)) return;
      void change(() => call("DELETE", `${classesUrl}${node.id}/`), `Deleted "${node.name}".`);
    }, { class: "danger" }),
  );
  item.append(handle, color, nameInput(node), hotkey, el("span", { class: "muted tree-count" }, tree.countText(node.id)), controls);
  return item;
}

/** A place a dragged class can be dropped: under `parent` (null: the top level). */
function dropTarget(target: HTMLElement, parent: number | null): void {
  const dragged = (e: DragEvent) => Number(e.dataTransfer?.getData("text/plain") || NaN);
  target.addEventListener("dragover", (e) => {
    e.preventDefault(); // the id is readable only on drop; the drop decides
    target.classList.add("drop-here");
  });
  target.addEventListener("dragleave", () => target.classList.remove("drop-here"));
  target.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    target.classList.remove("drop-here");
    const id = dragged(e);
    if (!Number.isFinite(id) || id === parent) return;
    if (!tree.canMove(id, parent)) {
      toast(`"${tree.get(id).name}" cannot go there: it is there already, or that class sits under it.`, "error");
      return;
    }
    void moveTo(tree.get(id), parent);
  });
}

function render(): void {
  list.replaceChildren(...tree.nodes.map(nodeRow));
  if (!tree.nodes.length) list.append(el("li", { class: "muted" }, "No classes yet: add the first below."));
}

const ACTION_TEXT: Record<string, (details: Record<string, unknown>) => string> = {
  create: () => "created",
  update: (details) => Object.entries(details).map(([field, values]) => {
    const [before, after] = values as [unknown, unknown];
    return `${field}: ${before === null || before === "" ? "—" : before} → ${after === null || after === "" ? "—" : after}`;
  }).join("; "),
  merge: (details) => `merged into "${(details.target as { name: string }).name}" (${details.annotations} labels, ${details.predictions} predictions relabeled)`,
  delete: () => "deleted",
};

async function loadHistory(): Promise<void> {
  const events = (await call<{ results: ClassEvent[] }>("GET", `${classesUrl}history/?limit=200`)).results;
  historyBody.replaceChildren(...events.slice(0, 30).map((event) => el("tr", {},
    el("td", {}, new Date(event.created_at).toLocaleString()), el("td", {}, event.actor ?? "—"),
    el("td", {}, event.class_name), el("td", {}, (ACTION_TEXT[event.action] ?? (() => event.action))(event.details)))));
}

/** The assist's suggestion against the tree as it is: an "Add" for each new class whose
 * parent exists (under that class, by its stored name). */
function renderSuggestions(): void {
  const host = byId("tree-suggestions");
  const names = new Map(tree.nodes.map((node) => [node.name.trim().toLowerCase(), node.name]));
  host.replaceChildren(...suggestionRows(suggested, [...names.values()]).map((row) => {
    const item = el("li", { class: "tree-node", "data-suggested": row.name }, el("span", { class: "tree-name" }, row.name));
    item.style.setProperty("--depth", String(row.depth));
    if (row.exists) item.append(el("span", { class: "muted" }, "in the tree"));
    else if (!row.addable) item.append(el("span", { class: "muted" }, `add "${row.parent}" first`));
    else {
      const parent = row.parent === null ? null : names.get(row.parent.trim().toLowerCase())!;
      const add = el("button", { type: "button", "aria-label": `add suggested ${row.name}` }, "Add");
      add.addEventListener("click", () => void change(() => call("POST", classesUrl, { name: row.name, ...(parent ? { parent } : {}) }),
        `Added "${row.name}"${parent ? ` under "${parent}"` : ""}.`));
      item.append(add);
    }
    return item;
  }));
}

async function suggestTaxonomy(button: HTMLButtonElement, maxImages: number): Promise<void> {
  button.disabled = true;
  try {
    const sample = await call<{ results: Array<{ id: number }> }>(
      "GET", `/api/projects/${projectId}/images/browse/?limit=${maxImages}`);
    if (!sample.results.length) throw new Error("the project has no images to show the assist");
    const answer = await call<{ taxonomy: SuggestedClass[] }>("POST", `/api/projects/${projectId}/assist/taxonomy/`,
      { image_ids: sample.results.map((image) => image.id) });
    suggested = answer.taxonomy;
    renderSuggestions();
  } catch (error) {
    toast(`No suggestion: ${(error as Error).message}`, "error");
  } finally {
    button.disabled = false;
  }
}

call<{ enabled: boolean; max_images: number }>("GET", `/api/projects/${projectId}/assist/`).then((assist) => {
  if (!assist.enabled) return;
  const button = byId<HTMLButtonElement>("tree-suggest");
  byId("tree-assist").hidden = false;
  button.addEventListener("click", () => void suggestTaxonomy(button, assist.max_images));
}).catch(() => undefined); // the assist is optional: without it the editor is complete

dropTarget(top, null);
addForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const name = String(new FormData(addForm).get("name") ?? "");
  void change(async () => {
    await call("POST", classesUrl, { name });
    addForm.reset();
  }, `Added "${name.trim()}".`);
});
reload().catch((error) => toast((error as Error).message, "error"));
