// The theme switch in the header: System (follow prefers-color-scheme), Light or Dark. The
// choice is kept in local storage and shown as <html data-theme>, which theme.css reads; with no
// attribute the page follows the system, live, with no script involved.

import { el } from "./dom.js";

const STORAGE = "tracehive.theme"; // theme_boot.js reads the same key before the first paint
const CHOICES = [["system", "◐ System"], ["light", "☀ Light"], ["dark", "☾ Dark"]];

export function themeChoice() {
  try {
    const choice = localStorage.getItem(STORAGE);
    return choice === "light" || choice === "dark" ? choice : "system";
  } catch {
    return "system";
  }
}

export function applyTheme(choice) {
  if (choice === "light" || choice === "dark") document.documentElement.dataset.theme = choice;
  else delete document.documentElement.dataset.theme;
  try {
    if (choice === "light" || choice === "dark") localStorage.setItem(STORAGE, choice);
    else localStorage.removeItem(STORAGE);
  } catch {
    /* storage disabled: the choice lasts until the page is reloaded */
  }
}

/** A <select> for the top bar; changing it switches the theme at once. */
export function themeSwitch() {
  const select = el("select", { className: "theme-switch", title: "Colour theme", attrs: { "aria-label": "Theme" } },
    CHOICES.map(([value, label]) => el("option", { value, text: label })));
  select.value = themeChoice();
  select.addEventListener("change", () => applyTheme(select.value));
  return select;
}
