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
