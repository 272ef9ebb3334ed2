// The export form: warn while choosing, before Save, when the chosen segments' members
// exceed the connection type's limit.
(function () {
  var form = document.getElementById("export-form");
  var warning = document.getElementById("limit-warning");
  if (!form || !warning) { return; }
  function update() {
    var connection = form.querySelector("input[name=connection]:checked");
    var limit = connection ? parseInt(connection.dataset.limit, 10) : NaN;
    var total = 0;
    form.querySelectorAll("input[name=segments]:checked").forEach(function (box) {
      total += parseInt(box.dataset.members, 10) || 0;
    });
    if (!isNaN(limit) && total > limit) {
      warning.textContent = warning.dataset.message
        .replace("{count}", total.toLocaleString()).replace("{limit}", limit.toLocaleString())
        .replace("{service}", connection.dataset.service);
    } else {
      warning.textContent = "";
    }
  }
  form.addEventListener("change", update);
  update();
})();

// The sections and hints of one service show only while a connection of its type is chosen
// (a hidden section's inputs are disabled, so they are not sent); a mapping row's "new field"
// inputs show only when the row creates a field. Load fields redraws the rows (htmx).
(function () {
  var form = document.getElementById("export-form");
  if (!form) { return; }
  function showKind() {
    var connection = form.querySelector("input[name=connection]:checked");
    var kind = connection ? connection.dataset.kind : "";
    form.querySelectorAll("[data-kinds]").forEach(function (element) {
      var shown = kind !== "" && element.dataset.kinds.split(" ").indexOf(kind) !== -1;
      element.hidden = !shown;
      if (element.tagName === "FIELDSET") { element.disabled = !shown; }
    });
    form.querySelectorAll("[data-no-kind]").forEach(function (element) {
      element.hidden = kind !== "";
    });
  }
  function showNewFields() {
    form.querySelectorAll(".mapping-row").forEach(function (row) {
      var destination = row.querySelector("select.mapping-destination");
      var inputs = row.querySelector("[data-new-field]");
      if (destination && inputs) { inputs.hidden = destination.value !== "__new__"; }
    });
  }
  form.addEventListener("change", function (event) {
    if (event.target.name === "connection") { showKind(); }
    if (event.target.classList.contains("mapping-destination")) { showNewFields(); }
  });
  document.body.addEventListener("htmx:afterSwap", function () { showKind(); showNewFields(); });
  showKind();
  showNewFields();
})();
