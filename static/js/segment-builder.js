// The segment rule builder: edits the rule tree held (as JSON) in the form's hidden "rules"
// field, and asks the server for a live size estimate whenever the rules change.
// Every control has a label; ids follow the control's place in the tree, so focus stays on
// the control that was used when the builder redraws itself.
(function () {
  "use strict";
  const root = document.getElementById("rule-builder");
  if (!root) return;
  const config = JSON.parse(document.getElementById("builder-config").textContent);
  const hidden = document.querySelector("input[name=rules]");
  const labels = config.labels;
  const SEGMENT_PREFIX = "segment:";
  const CONSENT_PREFIX = "consent:";
  let tree;
  try { tree = JSON.parse(hidden.value || "null"); } catch (e) { tree = null; }
  if (!tree || !(Array.isArray(tree.conditions) || Array.isArray(tree.segments))) {
    tree = { match: "all", conditions: [newCondition()] };
  }

  // Conditions whose value the user has typed in: until then an empty value is not an error,
  // only a condition still to finish (no error before the user has typed anything).
  const typedIn = new WeakSet();

  function fieldLabel(name) {
    const field = config.fields.find((f) => f.name === name);
    return field && field.label ? field.label : name;
  }

  function fieldType(name) {
    const field = config.fields.find((f) => f.name === name);
    return field ? field.data_type : "text";
  }

  function operatorsFor(condition) {
    if (condition.segment !== undefined) return config.operatorsByType.segment;
    if (condition.consent !== undefined) return config.operatorsByType.consent;
    return config.operatorsByType[fieldType(condition.field)] || config.operatorsByType.text;
  }

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

  function labelled(text, control, id, visible) {
    control.id = id;
    return el("span", { class: "rb-control" }, [
      el("label", { for: id, class: visible ? "rb-label" : "visually-hidden", text: text }), control,
    ]);
  }

  function select(options, value, onchange) {
    const node = el("select", { onchange: onchange });
    options.forEach(([v, text]) => {
      const option = el("option", { value: v, text: text });
      if (String(v) === String(value)) option.selected = true;
      node.appendChild(option);
    });
    return node;
  }

  function fieldSelect(condition, id) {
    const node = el("select", { onchange: (e) => chooseField(condition, e.target.value) });
    const fields = el("optgroup", { label: labels.profileFields });
    const known = config.fields.slice();
    if (condition.field !== undefined && !known.some((f) => f.name === condition.field)) {
      known.unshift({ name: condition.field, data_type: "text" });
    }
    known.forEach((f) => {
      const option = el("option", { value: f.name, title: f.name,
        text: (f.label || f.name) + " (" + (config.types[f.data_type] || f.data_type) + ")" });
      if (condition.segment === undefined && condition.consent === undefined && f.name === condition.field) option.selected = true;
      fields.appendChild(option);
    });
    node.appendChild(fields);
    if (config.segments.length) {
      const segments = el("optgroup", { label: labels.segmentsGroup });
      config.segments.forEach((s) => {
        const option = el("option", { value: SEGMENT_PREFIX + s.id, text: s.name });
        if (condition.segment === s.id) option.selected = true;
        segments.appendChild(option);
      });
      node.appendChild(segments);
    }
    const consent = el("optgroup", { label: labels.consentGroup });
    Object.entries(config.consent).forEach(([key, text]) => {
      const option = el("option", { value: CONSENT_PREFIX + key, text: labels.consent + ": " + text });
      if (condition.consent === key) option.selected = true;
      consent.appendChild(option);
    });
    node.appendChild(consent);
    return labelled(labels.field, node, id);
  }

  function chooseField(condition, value) {
    Object.keys(condition).forEach((k) => delete condition[k]);
    if (value.startsWith(SEGMENT_PREFIX)) {
      condition.segment = Number(value.slice(SEGMENT_PREFIX.length));
      condition.operator = "member_of";
    } else if (value.startsWith(CONSENT_PREFIX)) {
      condition.consent = value.slice(CONSENT_PREFIX.length);
      condition.operator = "opted_out";
    } else {
      condition.field = value;
      condition.operator = operatorsFor(condition)[0];
      resetValue(condition);
    }
    changed(true);
  }

  function resetValue(condition) {
    typedIn.delete(condition);
    delete condition.value;
    delete condition.case_sensitive;
    if (config.withoutValue.includes(condition.operator) || condition.segment !== undefined
      || condition.consent !== undefined) return;
    if (condition.operator === "between") condition.value = ["", ""];
    else if (config.relative.includes(condition.operator)) condition.value = 7;
    else condition.value = "";
  }

  function inputType(condition) {
    const type = fieldType(condition.field);
    if (type === "date" || type === "datetime") return "date";
    if (type === "number") return "number";
    return "text";
  }

  function valueControls(condition, id) {
    const op = condition.operator;
    if (condition.segment !== undefined || condition.consent !== undefined
      || config.withoutValue.includes(op)) return [];
    const set = (v) => { condition.value = v; typedIn.add(condition); changed(); };
    if (op === "between") {
      const value = Array.isArray(condition.value) ? condition.value : ["", ""];
      const low = el("input", { type: inputType(condition), value: value[0] || "", step: "any",
        oninput: (e) => set([e.target.value, value[1] || ""]) });
      const high = el("input", { type: inputType(condition), value: value[1] || "", step: "any",
        oninput: (e) => set([value[0] || "", e.target.value]) });
      return [labelled(labels.from, low, id + "-from", true), labelled(labels.to, high, id + "-to", true)];
    }
    if (config.relative.includes(op)) {
      return [labelled(labels.amount, el("input", { type: "number", min: "1", step: "1", class: "short",
        value: condition.value === undefined ? "" : String(condition.value),
        oninput: (e) => set(e.target.value) }), id + "-value")];
    }
    if (op === "in_list") {
      const area = el("textarea", { rows: "4", placeholder: labels.listHint,
        oninput: (e) => set(e.target.value.split("\n")) });
      area.value = Array.isArray(condition.value) ? condition.value.join("\n") : (condition.value || "");
      return [labelled(labels.value, area, id + "-value"), caseToggle(condition, id)];
    }
    const type = ["before", "after", "on"].includes(op) ? "date" : (inputType(condition) === "number" ? "number" : "text");
    const controls = [labelled(labels.value, el("input", { type: type, value: condition.value || "", step: "any",
      oninput: (e) => set(e.target.value) }), id + "-value")];
    if (config.caseOperators.includes(op) && inputType(condition) === "text") controls.push(caseToggle(condition, id));
    return controls;
  }

  function caseToggle(condition, id) {
    const box = el("input", { type: "checkbox", onchange: (e) => {
      if (e.target.checked) condition.case_sensitive = true; else delete condition.case_sensitive;
      changed();
    } });
    box.checked = condition.case_sensitive === true;
    box.id = id + "-case";
    return el("span", { class: "rb-control" }, [box, el("label", { for: box.id, text: labels.matchCase })]);
  }

  function renderCondition(condition, parent, index, path) {
    const row = el("div", { class: "rb-condition" });
    row.appendChild(fieldSelect(condition, path + "-field"));
    const operators = operatorsFor(condition).map((key) => [key, config.operators[key]]);
    row.appendChild(labelled(labels.operator, select(operators, condition.operator, (e) => {
      condition.operator = e.target.value;
      resetValue(condition);
      changed(true);
    }), path + "-operator"));
    valueControls(condition, path).forEach((c) => row.appendChild(c));
    const name = condition.segment !== undefined ? labels.segment
      : condition.consent !== undefined ? labels.consent : fieldLabel(condition.field);
    row.appendChild(el("button", { type: "button", class: "button small link", text: labels.remove,
      "aria-label": labels.remove + " " + name, id: path + "-remove",
      onclick: () => { parent.conditions.splice(index, 1); changed(true); } }));
    return row;
  }

  function renderGroup(group, parent, index, path) {
    const box = el("div", { class: "rb-group", role: "group", "aria-label": labels.match });
    const head = el("div", { class: "rb-group-head" });
    head.appendChild(labelled(labels.match, select(Object.entries(config.matches), group.match,
      (e) => { group.match = e.target.value; changed(true); }), path + "-match"));
    if (parent) {
      head.appendChild(el("button", { type: "button", class: "button small link", text: labels.remove,
        id: path + "-remove", onclick: () => { parent.conditions.splice(index, 1); changed(true); } }));
    }
    box.appendChild(head);
    const list = el("div", { class: "rb-items" });
    group.conditions.forEach((item, i) => {
      const itemPath = path + "-" + i;
      if (i > 0) list.appendChild(el("div", { class: "rb-connector", text: group.match === "any" ? labels.or : labels.and }));
      list.appendChild(item.conditions ? renderGroup(item, group, i, itemPath) : renderCondition(item, group, i, itemPath));
    });
    box.appendChild(list);
    box.appendChild(el("div", { class: "rb-actions" }, [
      el("button", { type: "button", class: "button small", text: "+ " + labels.addCondition, id: path + "-add",
        onclick: () => { group.conditions.push(newCondition()); changed(true); } }),
      el("button", { type: "button", class: "button small", text: "+ " + labels.addGroup, id: path + "-addgroup",
        onclick: () => { group.conditions.push({ match: "any", conditions: [newCondition()] }); changed(true); } }),
    ]));
    return box;
  }

  function renderCombination() {
    const box = el("div", { class: "rb-group" });
    if (!config.segments.length) box.appendChild(el("p", { class: "hint", text: labels.noSegments }));
    const options = config.segments.map((s) => [s.id, s.name]);
    tree.segments.forEach((id, i) => {
      const text = tree.combine === "difference" ? (i === 0 ? labels.firstSegment : labels.exceptSegment)
        : labels.segment + " " + (i + 1);
      const row = el("div", { class: "rb-condition" });
      row.appendChild(labelled(text, select(options, id, (e) => { tree.segments[i] = Number(e.target.value); changed(); }),
        "rb-seg-" + i, true));
      if (tree.segments.length > 2) {
        row.appendChild(el("button", { type: "button", class: "button small link", text: labels.remove,
          "aria-label": labels.remove + " " + text, id: "rb-seg-" + i + "-remove",
          onclick: () => { tree.segments.splice(i, 1); changed(true); } }));
      }
      box.appendChild(row);
    });
    box.appendChild(el("div", { class: "rb-actions" }, [
      el("button", { type: "button", class: "button small", text: "+ " + labels.addSegment, id: "rb-seg-add",
        onclick: () => { tree.segments.push(firstUnused()); changed(true); } }),
    ]));
    return box;
  }

  function firstUnused() {
    const unused = config.segments.find((s) => !tree.segments.includes(s.id));
    return unused ? unused.id : (config.segments[0] || {}).id;
  }

  function modeSelect() {
    const options = [["conditions", labels.byConditions], ...Object.entries(config.combinations)];
    return el("div", { class: "rb-group-head" }, [labelled(labels.definedBy, select(options, tree.combine || "conditions", (e) => {
      const mode = e.target.value;
      if (mode === "conditions") tree = { match: "all", conditions: [newCondition()] };
      else if (tree.combine) tree.combine = mode;
      else {
        tree = { combine: mode, segments: [] };
        tree.segments.push(firstUnused());
        tree.segments.push(firstUnused());
      }
      changed(true);
    }), "rb-mode", true)]);
  }

  function render() {
    const focusedId = document.activeElement && document.activeElement.id;
    const body = tree.combine ? renderCombination() : renderGroup(tree, null, 0, "rb-0");
    root.replaceChildren(modeSelect(), body);
    const focused = focusedId && document.getElementById(focusedId);
    if (focused) focused.focus();
  }

  let timer = null;
  function changed(rerender) {
    hidden.value = JSON.stringify(tree);
    if (rerender) render();
    clearTimeout(timer);
    timer = setTimeout(estimate, 300);
  }

  function isBlank(condition) {
    const value = condition.value;
    const blank = (v) => v === undefined || v === null || String(v).trim() === "";
    if (condition.operator === "between") return !Array.isArray(value) || value.some(blank);
    if (Array.isArray(value)) return value.every(blank);
    return blank(value);
  }

  function unfinished(group) {
    if (!group.conditions) return false;
    return group.conditions.some((item) => item.conditions ? unfinished(item)
      : item.segment === undefined && item.consent === undefined
        && !config.withoutValue.includes(item.operator)
        && isBlank(item) && !typedIn.has(item));
  }

  function estimate() {
    const target = document.getElementById("estimate");
    if (!target) return;
    if (unfinished(tree)) {
      target.replaceChildren(el("span", { class: "hint", text: labels.unfinished }));
      return;
    }
    if (!window.htmx) return;
    htmx.ajax("POST", root.dataset.estimateUrl, {
      source: root, target: "#estimate", swap: "outerHTML", values: { rules: hidden.value },
    });
  }

  hidden.value = JSON.stringify(tree);
  render();
  window.addEventListener("load", estimate);
})();
