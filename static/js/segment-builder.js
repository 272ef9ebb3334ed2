// The segment rule builder: edits the rule tree held (as JSON) in the form's hidden "rules"
// field, and asks the server for a live size estimate whenever the rules change.
(function () {
  "use strict";
  const root = document.getElementById("rule-builder");
  if (!root) return;
  const config = JSON.parse(document.getElementById("builder-config").textContent);
  const hidden = document.querySelector("input[name=rules]");
  const labels = config.labels;
  let tree;
  try { tree = JSON.parse(hidden.value || "null"); } catch (e) { tree = null; }
  if (!tree || !Array.isArray(tree.conditions)) {
    tree = { match: "all", conditions: [newCondition()] };
  }
  let uid = 0;

  function newCondition() {
    const first = config.fields.find((f) => f.name === "email") || config.fields[0];
    return { field: first ? first.name : "email", operator: "contains", value: "" };
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }

  function labelled(text, control) {
    const id = "rb-" + (++uid);
    control.id = id;
    return el("span", { class: "rb-control" }, [
      el("label", { for: id, class: "visually-hidden", text: text }), control,
    ]);
  }

  function select(options, value, onchange) {
    const node = el("select", { onchange: onchange });
    options.forEach(([v, text]) => {
      const option = el("option", { value: v, text: text });
      if (v === value) option.selected = true;
      node.appendChild(option);
    });
    return node;
  }

  function renderCondition(condition, parent, index) {
    const fieldOptions = config.fields.map((f) => [f.name, f.name]);
    if (!config.fields.some((f) => f.name === condition.field)) fieldOptions.unshift([condition.field, condition.field]);
    const row = el("div", { class: "rb-condition" });
    row.appendChild(labelled(labels.field, select(fieldOptions, condition.field, (e) => { condition.field = e.target.value; changed(); })));
    row.appendChild(labelled(labels.operator, select(Object.entries(config.operators), condition.operator, (e) => {
      condition.operator = e.target.value;
      if (config.withoutValue.includes(condition.operator)) delete condition.value;
      else if (condition.value === undefined) condition.value = "";
      changed(true);
    })));
    if (!config.withoutValue.includes(condition.operator)) {
      const input = el("input", {
        type: "text",
        value: Array.isArray(condition.value) ? condition.value.join(", ") : (condition.value || ""),
        placeholder: condition.operator === "in_list" ? labels.listHint : "",
        oninput: (e) => { condition.value = e.target.value; changed(); },
      });
      row.appendChild(labelled(labels.value, input));
    }
    row.appendChild(el("button", { type: "button", class: "button small link", text: labels.remove,
      "aria-label": labels.remove + " " + condition.field,
      onclick: () => { parent.conditions.splice(index, 1); changed(true); } }));
    return row;
  }

  function renderGroup(group, parent, index) {
    const box = el("div", { class: "rb-group" });
    const head = el("div", { class: "rb-group-head" });
    head.appendChild(labelled(labels.match, select(Object.entries(config.matches), group.match, (e) => { group.match = e.target.value; changed(); })));
    if (parent) {
      head.appendChild(el("button", { type: "button", class: "button small link", text: labels.remove,
        onclick: () => { parent.conditions.splice(index, 1); changed(true); } }));
    }
    box.appendChild(head);
    const list = el("div", { class: "rb-items" });
    group.conditions.forEach((item, i) => {
      list.appendChild(item.conditions ? renderGroup(item, group, i) : renderCondition(item, group, i));
    });
    box.appendChild(list);
    box.appendChild(el("div", { class: "rb-actions" }, [
      el("button", { type: "button", class: "button small", text: "+ " + labels.addCondition,
        onclick: () => { group.conditions.push(newCondition()); changed(true); } }),
      el("button", { type: "button", class: "button small", text: "+ " + labels.addGroup,
        onclick: () => { group.conditions.push({ match: "any", conditions: [newCondition()] }); changed(true); } }),
    ]));
    return box;
  }

  function render() {
    const focusedId = document.activeElement && document.activeElement.id;
    root.replaceChildren(renderGroup(tree, null, 0));
    if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
  }

  let timer = null;
  function changed(rerender) {
    hidden.value = JSON.stringify(tree);
    if (rerender) render();
    clearTimeout(timer);
    timer = setTimeout(estimate, 300);
  }

  function estimate() {
    const target = document.getElementById("estimate");
    if (!target || !window.htmx) return;
    htmx.ajax("POST", root.dataset.estimateUrl, {
      source: root, target: "#estimate", swap: "outerHTML", values: { rules: hidden.value },
    });
  }

  hidden.value = JSON.stringify(tree);
  render();
  window.addEventListener("load", estimate);
})();
