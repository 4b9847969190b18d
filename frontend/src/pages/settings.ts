/** Project settings, members and label classes (admins). */
import { ApiError, byId, call, callAll, el, toast } from "../lib/api";
import type { LabelClass } from "../lib/types";
import { setUpPrivacy } from "./privacySettings";

interface Member {
  user_id: number;
  username: string;
  role: string;
}

const root = byId("settings");
const projectId = root.dataset.projectId;
setUpPrivacy(projectId ?? "");
const myUserId = Number(root.dataset.userId);
const roles = (root.dataset.roles ?? "annotator,lead,admin").split(",");
const form = byId<HTMLFormElement>("settings-form");
const settingsErrors = byId("settings-errors");
const classesBody = byId("classes-body");
const classForm = byId<HTMLFormElement>("class-form");
const classColor = classForm.querySelector<HTMLInputElement>("input[name=color]")!;
classColor.addEventListener("input", () => { classColor.dataset.changed = "1"; });
const membersBody = byId("members-body");
const memberForm = byId<HTMLFormElement>("member-form");

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

/** Marks the inputs the server refused and lists what each must be; clears the marks when `errors` is empty. */
function showSettingsErrors(errors: Record<string, string[] | string>): void {
  const messages: string[] = [];
  for (const input of form.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[name]")) {
    const problem = errors[input.name];
    if (problem === undefined) input.removeAttribute("aria-invalid");
    else {
      input.setAttribute("aria-invalid", "true");
      messages.push(...(Array.isArray(problem) ? problem : [problem]));
    }
  }
  for (const [field, problem] of Object.entries(errors)) {
    if (!form.querySelector(`[name="${field}"]`)) messages.push(...(Array.isArray(problem) ? problem : [problem]));
  }
  settingsErrors.textContent = messages.join(" ");
  settingsErrors.hidden = messages.length === 0;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const body: Record<string, unknown> = {};
  for (const input of form.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[name]")) body[input.name] = numberOrText(input);
  try {
    await call("PATCH", `/api/projects/${projectId}/`, body);
    showSettingsErrors({});
    toast("Settings saved.");
  } catch (error) {
    const data = error instanceof ApiError ? (error.data as { errors?: Record<string, string[]> } | null) : null;
    showSettingsErrors(data?.errors ?? { "": [(error as Error).message] });
    toast("Settings not saved: see the marked fields.", "error");
  }
});

async function loadMembers(): Promise<void> {
  renderMembers(await callAll<Member>(`/api/projects/${projectId}/members/`));
}

function renderMembers(members: Member[]): void {
  membersBody.replaceChildren(
    ...members.map((member) => {
      const url = `/api/projects/${projectId}/members/${member.user_id}/`;
      const role = el("select", { "aria-label": `role of ${member.username}` },
        ...roles.map((value) => el("option", { value }, value)));
      role.value = member.role;
      role.addEventListener("change", async () => {
        try {
          const saved = await call<Member>("PATCH", url, { role: role.value });
          member.role = saved.role;
          toast(`${member.username} is ${saved.role} now.`);
        } catch (error) {
          role.value = member.role;
          toast((error as Error).message, "error");
        }
      });
      const remove = el("button", { type: "button", class: "danger", "data-confirm": `Remove ${member.username} from this project?` }, "Remove");
      remove.addEventListener("click", async (e) => {
        if (e.defaultPrevented) return;
        try {
          await call("DELETE", url);
          toast(`${member.username} removed.`);
          await loadMembers();
        } catch (error) {
          toast((error as Error).message, "error");
        }
      });
      const name = member.user_id === myUserId ? `${member.username} (you)` : member.username;
      return el("tr", { "data-username": member.username }, el("td", {}, name), el("td", {}, role), el("td", {}, remove));
    }),
  );
}

memberForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(memberForm);
  try {
    const added = await call<Member>("POST", `/api/projects/${projectId}/members/`, { user: data.get("user"), role: data.get("role") });
    memberForm.reset();
    toast(`${added.username} joined as ${added.role}.`);
    await loadMembers();
  } catch (error) {
    toast((error as Error).message, "error");
  }
});

classForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(classForm);
  try {
    // A color left as it was is the server's pick: the next of the palette.
    const body: Record<string, unknown> = { name: data.get("name"), hotkey: data.get("hotkey") };
    if (classColor.dataset.changed) body.color = data.get("color");
    await call("POST", `/api/projects/${projectId}/label-classes/`, body);
    classForm.reset();
    delete classColor.dataset.changed;
    await loadProject();
  } catch (error) {
    toast((error as Error).message, "error");
  }
});

loadProject().catch((error) => toast((error as Error).message, "error"));
loadMembers().catch((error) => toast(`Could not load the members: ${(error as Error).message}`, "error"));
