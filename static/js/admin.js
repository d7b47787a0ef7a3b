// Every admin page (templates/admin/base_site.html): what Django's admin widgets leave out for
// keyboard and screen-reader users (axe "label", "select-name", "scrollable-region-focusable",
// "aria-prohibited-attr"): tabular inlines, split date-and-time fields, filter boxes' icons.
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
    // A date-and-time field is two inputs under one label that points at neither ("Last login:"
    // then "Date:" and "Time:" as plain text): each gets "Last login, date" and "…, time".
    for (const pair of document.querySelectorAll(".form-row p.datetime")) {
      const label = pair.closest(".form-row").querySelector("label");
      const name = label ? label.textContent.trim().replace(/:$/, "") : "";
      const [date, time] = pair.querySelectorAll("input.vDateField, input.vTimeField");
      for (const [field, part] of [[date, "date"], [time, "time"]]) {
        if (field && !(field.labels && field.labels.length)) field.setAttribute("aria-label", `${name}, ${part}`);
      }
    }
  });

  // The filter boxes' search icon (drawn by SelectFilter2.js on load) carries its hint as
  // aria-label on a plain span: it is an image.
  window.addEventListener("load", () => {
    for (const icon of document.querySelectorAll("span.help-tooltip[aria-label]")) icon.setAttribute("role", "img");
  });

  // A row added with "Add another" (django.contrib.admin's inlines.js sends formset:added).
  document.addEventListener("formset:added", (event) => {
    const row = event.target;
    const table = row.closest("table");
    if (table) labelRow(row, headersOf(table));
  });
})();
