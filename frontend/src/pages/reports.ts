/** Reports shell: the navigation between reports; each report view fills #report-body
 * from GET /api/projects/{id}/reports/<name>/. */
import { byId } from "../lib/api";

const root = byId("reports");
const links = root.querySelectorAll<HTMLAnchorElement>("[data-report]");

function select(name: string): void {
  for (const link of links) link.classList.toggle("current", link.dataset.report === name);
  byId("report-body").dataset.report = name;
}

for (const link of links) {
  link.addEventListener("click", (e) => {
    e.preventDefault();
    history.replaceState(null, "", `#${link.dataset.report}`);
    select(link.dataset.report!);
  });
}
select(location.hash.slice(1) || links[0]?.dataset.report || "");
