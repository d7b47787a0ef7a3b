// Every admin page (templates/admin/base_site.html): what Django's tabular inlines leave out for
// keyboard and screen-reader users (axe "label", "select-name", "scrollable-region-focusable").
(() => {
  "use strict";

  // Each input of a tabular inline is named by its column and its row ("Expires on — Insurance"):
  // the table's header cells are not labels.
  function labelRow(row, headers) {
    const original = row.querySelector("td.original p");
    const name = original && original.firstChild ? original.firstChild.textContent.trim() : "new row";
    Array.from(row.children).forEach((cell, index) => {
      for (const field of cell.querySelectorAll("input:not([type=hidden]), select, textarea")) {
        if ((field.labels && field.labels.length) || field.hasAttribute("aria-label")) continue;
        field.setAttribute("aria-label", [headers[index], name].filter(Boolean).join(" — "));
      }
    });
  }

  function headersOf(table) {
    return Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent.trim());
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const group of document.querySelectorAll(".inline-group")) {
      // On a narrow screen the inline's table scrolls sideways inside the group: a named region
      // that the keyboard can reach, to scroll it.
      const heading = group.querySelector("h2[id]");
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "region");
      if (heading) group.setAttribute("aria-labelledby", heading.id);
    }
    for (const table of document.querySelectorAll(".inline-group table")) {
      const headers = headersOf(table);
      for (const row of table.querySelectorAll("tbody tr.form-row")) labelRow(row, headers);
    }
  });

  // A row added with "Add another" (django.contrib.admin's inlines.js sends formset:added).
  document.addEventListener("formset:added", (event) => {
    const row = event.target;
    const table = row.closest("table");
    if (table) labelRow(row, headersOf(table));
  });
})();
