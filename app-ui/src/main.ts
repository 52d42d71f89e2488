// Entry point of the window's front end.

import "./style.css";
import { start } from "./app";

const root = document.getElementById("app");
if (root) {
  start(root).catch((e: unknown) => {
    root.textContent = `Chantry could not start its window: ${String(e)}`;
  });
}
