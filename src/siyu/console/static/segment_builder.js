// The segment builder: edits a rule tree (docs/segment-rules.md) and keeps it in a hidden input as JSON.
// The form around it posts that input to the live count on every change (htmx); the server checks the rule.
(function () {
  "use strict";

  var GROUP_KEYS = ["all", "any"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function select(options, value, label) {
    var s = el("select", { "aria-label": label || "" });
    options.forEach(function (o) {
      var opt = el("option", { value: String(o[0]), text: o[1] });
      if (String(o[0]) === String(value)) { opt.selected = true; }
      s.appendChild(opt);
    });
    return s;
  }

  function input(type, value, label) {
    var i = el("input", { type: type, "aria-label": label || "" });
    i.value = value === undefined || value === null ? "" : String(value);
    return i;
  }

  function Builder(root) {
    this.root = root;
    this.v = JSON.parse(root.dataset.vocabulary);
    this.hidden = document.getElementById(root.dataset.ruleInput);
    this.jsonView = document.getElementById("segment-rule-json");
    var rule = JSON.parse(this.hidden.value || "{\"all\": []}");
    this.rule = this.asGroup(rule);
    this.render();
  }

  // The builder shows groups; a rule whose top is a condition or a NOT becomes a group holding it.
  Builder.prototype.asGroup = function (node) {
    if (node.all || node.any) { return node; }
    return { all: [node] };
  };

  Builder.prototype.save = function (structural) {
    var text = JSON.stringify(this.rule);
    this.hidden.value = text;
    if (this.jsonView) { this.jsonView.textContent = JSON.stringify(this.rule, null, 2); }
    if (structural) { this.root.dispatchEvent(new CustomEvent("rule-changed", { bubbles: true })); }
  };

  Builder.prototype.render = function () {
    this.root.replaceChildren(this.group(this.rule, null, null));
    this.save(false);
  };

  Builder.prototype.words = function (key) { return this.v.words[key] || key; };
  Builder.prototype.opName = function (op) { return this.v.opNames[op] || op; };

  Builder.prototype.group = function (node, parent, index) {
    var self = this;
    var negated = !!node.not;
    var inner = negated ? node.not : node;
    var key = inner.any ? "any" : "all";
    var box = el("div", { "class": "seg-group" });
    var mode = select([["all", this.words("all")], ["any", this.words("any")]], key, this.words("match"));
    mode.className = "seg-mode";
    var notBox = input("checkbox", "", this.words("not"));
    notBox.checked = negated;
    notBox.className = "seg-not";
    var head = el("div", { "class": "seg-group-head" }, [
      el("label", { "class": "check" }, [notBox, el("span", { text: this.words("not") })]),
      el("span", { text: parent ? "" : this.words("match") }), mode,
    ]);
    if (parent) {
      var drop = el("button", { type: "button", "class": "btn btn-small btn-danger-ghost", text: this.words("remove") });
      drop.addEventListener("click", function () { parent.splice(index, 1); self.render(); self.save(true); });
      head.appendChild(drop);
    }
    box.appendChild(head);
    var children = inner[key];
    children.forEach(function (child, i) {
      // A negated condition is shown as a negated group holding it.
      if (child.not && !child.not.all && !child.not.any) { children[i] = child = { not: { all: [child.not] } }; }
      var isGroup = child.all || child.any || (child.not && (child.not.all || child.not.any));
      box.appendChild(isGroup ? self.group(child, children, i) : self.condition(child, children, i));
    });
    var addCond = el("button", { type: "button", "class": "btn btn-small seg-add-condition", text: this.words("add_condition") });
    var addGroup = el("button", { type: "button", "class": "btn btn-small seg-add-group", text: this.words("add_group") });
    addCond.addEventListener("click", function () {
      var f = self.v.fields[0];
      children.push({ field: f.key, op: self.v.ops[f.type][0], value: "" });
      self.render(); self.save(true);
    });
    addGroup.addEventListener("click", function () { children.push({ any: [] }); self.render(); self.save(true); });
    box.appendChild(el("div", { "class": "seg-buttons" }, [addCond, addGroup]));

    mode.addEventListener("change", function () {
      var list = inner[key];
      delete inner[key];
      inner[mode.value] = list;
      self.render(); self.save(true);
    });
    notBox.addEventListener("change", function () {
      var replacement = notBox.checked ? { not: inner } : inner;
      if (parent) { parent[index] = replacement; } else { self.rule = replacement.not ? { all: [replacement] } : replacement; }
      self.render(); self.save(true);
    });
    return box;
  };

  Builder.prototype.kindOf = function (node) {
    var n = node.not || node;
    var kinds = ["field", "attribute", "tag", "event", "consent", "identity", "segment"];
    for (var i = 0; i < kinds.length; i++) { if (n[kinds[i]] !== undefined) { return kinds[i]; } }
    return "field";
  };

  Builder.prototype.fresh = function (kind) {
    var v = this.v;
    if (kind === "attribute" && v.attributes.length) {
      var a = v.attributes[0];
      return { attribute: a.key, op: this.opsFor(this.attrType(a.type))[0], value: "" };
    }
    if (kind === "tag" && v.tags.length) { return { tag: v.tags[0].id, op: "has" }; }
    if (kind === "segment" && v.segments.length) { return { segment: v.segments[0].id, op: "in" }; }
    if (kind === "event") { return { event: v.events[0], op: "at_least", count: 1, within_days: 30 }; }
    if (kind === "consent") { return { consent: "sms", op: "granted" }; }
    if (kind === "identity") { return { identity: "unionid", op: "has" }; }
    var f = v.fields[0];
    return { field: f.key, op: v.ops[f.type][0], value: "" };
  };

  Builder.prototype.attrType = function (t) { return t === "multi_choice" ? "multi_choice" : t; };
  Builder.prototype.opsFor = function (type) { return this.v.ops[type] || this.v.ops.text; };

  Builder.prototype.condition = function (node, parent, index) {
    var self = this;
    var row = el("div", { "class": "seg-cond" });
    var kinds = Object.keys(this.v.kinds).filter(function (k) {
      return !((k === "attribute" && !self.v.attributes.length) || (k === "tag" && !self.v.tags.length) ||
               (k === "segment" && !self.v.segments.length));
    }).map(function (k) { return [k, self.v.kinds[k]]; });
    var kind = this.kindOf(node);
    var kindSelect = select(kinds, kind, this.v.kinds.field);
    kindSelect.className = "seg-kind";
    kindSelect.addEventListener("change", function () {
      parent[index] = self.fresh(kindSelect.value); self.render(); self.save(true);
    });
    row.appendChild(kindSelect);
    var update = function () { self.save(false); };
    this["edit_" + kind](node, row, update, function () { self.render(); });
    var drop = el("button", { type: "button", "class": "btn btn-small btn-danger-ghost seg-remove", text: this.words("remove") });
    drop.addEventListener("click", function () { parent.splice(index, 1); self.render(); self.save(true); });
    row.appendChild(drop);
    return row;
  };

  // A value typed by a person, as the rule type wants it.
  Builder.prototype.parse = function (type, op, raw) {
    if (op === "in" || op === "not_in") {
      return raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean).map(function (s) {
        return type === "number" && !isNaN(Number(s)) ? Number(s) : s;
      });
    }
    if (op === "within_last_days" || type === "number") { return raw === "" || isNaN(Number(raw)) ? raw : Number(raw); }
    if (type === "boolean") { return raw === "true"; }
    return raw;
  };

  Builder.prototype.valueInputs = function (node, type, row, update, choices) {
    var self = this;
    var op = node.op;
    if (op === "is_set" || op === "is_not_set") { delete node.value; return; }
    if (type === "boolean") {
      var b = select([["true", "✓"], ["false", "✗"]], String(node.value === true), this.words("value"));
      node.value = node.value === true;
      b.addEventListener("change", function () { node.value = b.value === "true"; update(); });
      row.appendChild(b);
      return;
    }
    if (op === "between") {
      var pair = Array.isArray(node.value) ? node.value : ["", ""];
      node.value = pair;
      [0, 1].forEach(function (i) {
        var box = input(type === "number" ? "number" : (type === "text" ? "text" : "date"), pair[i], self.words("value"));
        box.addEventListener("change", function () { pair[i] = self.parse(type, "eq", box.value); update(); });
        row.appendChild(box);
        if (i === 0) { row.appendChild(el("span", { text: self.words("and") })); }
      });
      return;
    }
    var keys = choices ? Object.keys(choices) : [];
    if (keys.length && (op === "eq" || op === "ne")) {
      if (keys.indexOf(node.value) < 0) { node.value = keys[0]; }
      var c = select(keys.map(function (k) { return [k, choices[k]]; }), node.value, this.words("value"));
      c.addEventListener("change", function () { node.value = c.value; update(); });
      row.appendChild(c);
      return;
    }
    var kind = "text";
    if (op === "within_last_days" || (type === "number" && op !== "in" && op !== "not_in")) { kind = "number"; }
    else if ((type === "date" || type === "datetime") && op !== "within_last_days") { kind = "date"; }
    var shown = Array.isArray(node.value) ? node.value.join(", ") : node.value;
    var box = input(kind, shown, this.words("value"));
    box.className = "seg-value";
    box.addEventListener("change", function () { node.value = self.parse(type, op, box.value); update(); });
    row.appendChild(box);
  };

  Builder.prototype.opSelect = function (ops, node, rerender) {
    var self = this;
    var s = select(ops.map(function (o) { return [o, self.opName(o)]; }), node.op, "op");
    s.className = "seg-op";
    if (ops.indexOf(node.op) < 0) { node.op = ops[0]; }
    s.addEventListener("change", function () { node.op = s.value; if (s.value === "between") { node.value = ["", ""]; } rerender(); });
    return s;
  };

  Builder.prototype.edit_field = function (node, row, update, rerender) {
    var self = this;
    var spec = this.v.fields.filter(function (f) { return f.key === node.field; })[0] || this.v.fields[0];
    var f = select(this.v.fields.map(function (x) { return [x.key, x.label]; }), spec.key, this.v.kinds.field);
    f.className = "seg-field";
    f.addEventListener("change", function () {
      var next = self.v.fields.filter(function (x) { return x.key === f.value; })[0];
      node.field = next.key; node.op = self.v.ops[next.type][0]; node.value = next.type === "boolean" ? true : "";
      rerender();
    });
    row.appendChild(f);
    row.appendChild(this.opSelect(this.v.ops[spec.type], node, rerender));
    this.valueInputs(node, spec.type, row, update, spec.choices);
  };

  Builder.prototype.edit_attribute = function (node, row, update, rerender) {
    var self = this;
    var spec = this.v.attributes.filter(function (a) { return a.key === node.attribute; })[0] || this.v.attributes[0];
    var a = select(this.v.attributes.map(function (x) { return [x.key, x.label]; }), spec.key, this.v.kinds.attribute);
    a.addEventListener("change", function () {
      var next = self.v.attributes.filter(function (x) { return x.key === a.value; })[0];
      node.attribute = next.key; node.op = self.opsFor(self.attrType(next.type))[0]; node.value = "";
      rerender();
    });
    row.appendChild(a);
    var type = this.attrType(spec.type);
    row.appendChild(this.opSelect(this.opsFor(type), node, rerender));
    this.valueInputs(node, type === "multi_choice" || type === "choice" ? "text" : type, row, update, null);
  };

  Builder.prototype.edit_tag = function (node, row, update, rerender) {
    var t = select(this.v.tags.map(function (x) { return [x.id, x.label]; }), node.tag, this.v.kinds.tag);
    t.addEventListener("change", function () { node.tag = Number(t.value); update(); });
    row.appendChild(this.opSelect(["has", "has_not"], node, rerender));
    row.appendChild(t);
  };

  Builder.prototype.edit_segment = function (node, row, update, rerender) {
    var self = this;
    var s = select(this.v.segments.map(function (x) { return [x.id, x.label]; }), node.segment, this.v.kinds.segment);
    s.addEventListener("change", function () { node.segment = Number(s.value); update(); });
    var op = select([["in", self.opName("in_segment")], ["not_in", self.opName("not_in_segment")]], node.op, "op");
    op.addEventListener("change", function () { node.op = op.value; update(); });
    row.appendChild(op);
    row.appendChild(s);
  };

  Builder.prototype.edit_consent = function (node, row, update, rerender) {
    var self = this;
    var c = select(Object.keys(this.v.channels).map(function (k) { return [k, self.v.channels[k]]; }), node.consent, this.v.kinds.consent);
    c.addEventListener("change", function () { node.consent = c.value; update(); });
    row.appendChild(c);
    row.appendChild(this.opSelect(["granted", "not_granted", "withdrawn"], node, rerender));
  };

  Builder.prototype.edit_identity = function (node, row, update, rerender) {
    var i = select(this.v.identities.map(function (k) { return [k, k]; }), node.identity, this.v.kinds.identity);
    i.addEventListener("change", function () { node.identity = i.value; update(); });
    row.appendChild(this.opSelect(["has", "has_not"], node, rerender));
    row.appendChild(i);
  };

  Builder.prototype.edit_event = function (node, row, update, rerender) {
    var self = this;
    var listId = "seg-events";
    if (!document.getElementById(listId)) {
      var list = el("datalist", { id: listId });
      ["*"].concat(this.v.events).forEach(function (e) { list.appendChild(el("option", { value: e })); });
      document.body.appendChild(list);
    }
    var type = input("text", node.event, this.v.kinds.event);
    type.setAttribute("list", listId);
    type.className = "seg-event";
    type.title = "* = " + this.words("any_activity");
    type.addEventListener("change", function () { node.event = type.value.trim(); update(); });
    row.appendChild(type);
    var sum = node.aggregate === "sum";
    var agg = select([["count", this.words("count")], ["sum", this.words("sum")]], sum ? "sum" : "count", "aggregate");
    agg.addEventListener("change", function () {
      if (agg.value === "sum") {
        delete node.count; node.aggregate = "sum"; node.property = "amount"; node.op = "gte"; node.value = 0;
      } else {
        delete node.aggregate; delete node.property; delete node.value; node.op = "at_least"; node.count = 1;
      }
      rerender();
    });
    row.appendChild(agg);
    if (sum) {
      var prop = input("text", node.property, "property");
      prop.addEventListener("change", function () { node.property = prop.value.trim(); update(); });
      row.appendChild(prop);
      row.appendChild(this.opSelect(["gte", "gt", "lte", "lt", "eq"], node, rerender));
      var total = input("number", node.value, this.words("value"));
      total.addEventListener("change", function () { node.value = Number(total.value); update(); });
      row.appendChild(total);
    } else {
      row.appendChild(this.opSelect(["at_least", "at_most", "exactly", "none"], node, function () {
        if (node.op === "none") { delete node.count; } else if (node.count === undefined) { node.count = 1; }
        rerender();
      }));
      if (node.op !== "none") {
        var count = input("number", node.count, this.words("times"));
        count.className = "seg-count";
        count.addEventListener("change", function () { node.count = Math.max(0, parseInt(count.value || "0", 10)); update(); });
        row.appendChild(count);
        row.appendChild(el("span", { text: this.words("times") }));
      }
    }
    var days = input("number", node.within_days, this.words("in_last"));
    days.className = "seg-days";
    days.placeholder = this.words("in_last");
    days.addEventListener("change", function () {
      var n = parseInt(days.value, 10);
      if (n > 0) { node.within_days = n; } else { delete node.within_days; }
      update();
    });
    row.appendChild(days);
    var where = (node.where && node.where[0]) || null;
    var wp = input("text", where ? where.property : "", this.words("where"));
    wp.placeholder = this.words("where");
    var wop = select(["eq", "ne", "gt", "gte", "lt", "lte", "contains"].map(function (o) { return [o, self.opName(o)]; }),
                     where ? where.op : "gt", "op");
    var wv = input("text", where ? where.value : "", this.words("value"));
    var setWhere = function () {
      var name = wp.value.trim();
      if (!name) { delete node.where; update(); return; }
      var raw = wv.value.trim();
      var value = raw !== "" && !isNaN(Number(raw)) ? Number(raw) : raw;
      node.where = [{ property: name, op: wop.value, value: value }];
      update();
    };
    [wp, wop, wv].forEach(function (x) { x.addEventListener("change", setWhere); row.appendChild(x); });
  };

  function boot() {
    var root = document.getElementById("segment-builder");
    if (root) { root.builder = new Builder(root); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", boot); } else { boot(); }
})();
