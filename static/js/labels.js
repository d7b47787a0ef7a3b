// Labels page: the "Print labels" button opens the browser's print dialog (labels.css lays out 4×6 pages).
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print-labels]")) {
    button.addEventListener("click", () => window.print());
  }
});
