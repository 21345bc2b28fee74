// The delivery sheet's Print button (no inline script: CSP).
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("print-sheet");
  if (button) button.addEventListener("click", () => window.print());
});
