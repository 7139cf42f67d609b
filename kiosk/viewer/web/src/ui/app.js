// The viewer's shell (placeholder until the UI lands). See docs/viewer.md.
export function startApp(root) {
  root.textContent = "MedPass viewer";
}
