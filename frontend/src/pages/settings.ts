/** Project settings and label classes (admins). */
import { byId, call, el, toast } from "../lib/api";
import type { LabelClass } from "../lib/types";


const root = byId("settings");
const projectId = root.dataset.projectId;
const form = byId<HTMLFormElement>("settings-form");
const classesBody = byId("classes-body");
const classForm = byId<HTMLFormElement>("class-form");

async function loadProject(): Promise<void> {
  const project = await call<Record<string, unknown>>("GET", `/api/projects/${projectId}/`);
  for (const input of form.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[name]")) {
    const value = project[input.name];
    input.value = value === null || value === undefined ? "" : String(value);
  }
  renderClasses(project.label_classes as LabelClass[]);
}

function renderClasses(classes: LabelClass[]): void {
  classesBody.replaceChildren(
    ...classes.map((c) => {
      const name = el("input", { value: c.name, "aria-label": "name" });
      const color = el("input", { type: "color", value: c.color, "aria-label": "color" });
      const hotkey = el("input", { value: c.hotkey, maxlength: "1", size: "2", "aria-label": "hotkey" });
      const save = el("button", { type: "button" }, "Save");
      save.addEventListener("click", async () => {
        try {
          const saved = await call<LabelClass>("PATCH", `/api/projects/${projectId}/label-classes/${c.id}/`, {
            name: name.value, color: color.value, hotkey: hotkey.value,
          });
          hotkey.value = saved.hotkey;
          toast(`Saved ${saved.name}.`);
        } catch (error) {
          toast((error as Error).message, "error");
        }
      });
      return el("tr", {}, el("td", {}, color), el("td", {}, name), el("td", {}, hotkey), el("td", {}, save));
    }),
  );
}

function numberOrText(input: HTMLInputElement | HTMLSelectElement): unknown {
  if (input.value === "") return input.dataset.nullable !== undefined ? null : "";
  return input.type === "number" ? Number(input.value) : input.value;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const body: Record<string, unknown> = {};
  for (const input of form.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[name]")) body[input.name] = numberOrText(input);
  try {
    await call("PATCH", `/api/projects/${projectId}/`, body);
    toast("Settings saved.");
  } catch (error) {
    toast((error as Error).message, "error");
  }
});

classForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(classForm);
  try {
    await call("POST", `/api/projects/${projectId}/label-classes/`, {
      name: data.get("name"), color: data.get("color"), hotkey: data.get("hotkey"),
    });
    classForm.reset();
    await loadProject();
  } catch (error) {
    toast((error as Error).message, "error");
  }
});

loadProject().catch((error) => toast((error as Error).message, "error"));
