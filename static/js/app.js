// Behaviour shared by every page. The Content-Security-Policy allows no inline script or style,
// so templates mark elements with data- attributes and this file acts on them.
(function () {
  "use strict";

  // The Menu button (phones): folds the sidebar away and back; Escape folds it and returns.
  function setMenu(button, open) {
    const menu = document.getElementById(button.getAttribute("aria-controls"));
    if (!menu) return;
    button.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("open", open);
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest(".menu-toggle");
    if (button) setMenu(button, button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const button = document.querySelector('.menu-toggle[aria-expanded="true"]');
    if (!button) return;
    setMenu(button, false);
    button.focus();
  });

  // [data-autosubmit]: submit its form as soon as a choice is made (language picker, switches).
  document.addEventListener("change", function (event) {
    const control = event.target;
    // A checkbox shown as a switch (role="switch") says its new state before its form goes.
    if (control.matches('input[role="switch"]')) {
      control.setAttribute("aria-checked", String(control.checked));
    }
    if (control.matches("[data-autosubmit]") && control.form) {
      control.form.requestSubmit();
    }
    // <select data-fills="#id">: copy the chosen value into another field (list picker).
    if (control.matches("[data-fills]") && control.value) {
      const target = document.querySelector(control.dataset.fills);
      if (target) target.value = control.value;
    }
  });

  // <button data-copy="#id" data-copied="Copied">: copy that field's text (a one-time secret).
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const field = document.querySelector(button.dataset.copy);
    if (!field) return;
    field.select();
    const done = function () {
      button.textContent = button.dataset.copied;
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        document.execCommand("copy");
        done();
      });
    } else {
      document.execCommand("copy");
      done();
    }
  });
  // <textarea data-select-on-focus>: the whole secret is selected when it gets the focus.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches("[data-select-on-focus]")) event.target.select();
  });

  // <span data-width-percent="42">: a bar's width, set here rather than in a style attribute.
  function sizeBars(root) {
    root.querySelectorAll("[data-width-percent]").forEach(function (bar) {
      bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.widthPercent) || 0)) + "%";
    });
  }

  // A table's cells name their column (data-label) for the stacked rows of a phone's layout;
  // list templates write it, and here every other table's cells get their header's text.
  function labelCells(root) {
    root.querySelectorAll("table.data").forEach(function (table) {
      const headers = Array.from(table.querySelectorAll("thead th")).map(function (th) {
        return th.querySelector(".visually-hidden") ? "" : th.textContent.replace(/[▲▼↕]/g, "").trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (row) {
        if (row.querySelector("[colspan]")) return;
        Array.from(row.children).forEach(function (cell, index) {
          if (!cell.hasAttribute("data-label") && headers[index]) cell.dataset.label = headers[index];
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { sizeBars(document); labelCells(document); });
  document.addEventListener("htmx:load", function (event) {
    sizeBars(event.detail.elt);
    labelCells(document);
  });
})();
