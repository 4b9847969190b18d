/** Loaded on every page: the stylesheet and small shared behaviour. */
import "../styles/app.css";

// Confirm consequential buttons (data-confirm="question").
document.addEventListener("click", (e) => {
  const target = (e.target as HTMLElement).closest<HTMLElement>("[data-confirm]");
  if (target && !window.confirm(target.dataset.confirm)) e.preventDefault();
}, true); // capture: decide before the button's own handler runs

document.addEventListener("click", (e) => {
  const closer = (e.target as HTMLElement).closest<HTMLElement>("[data-close-dialog]");
  closer?.closest("dialog")?.close();
});
