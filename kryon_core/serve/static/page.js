// The app's document, kept in step with the server's (Server-Sent Events),
// and the clicks and input that go back to the scripts.
"use strict";
const TAGS = {button: "button", input: "input", list: "ul", item: "li", header: "h1", label: "div",
              text: "span", checkbox: "input", link: "a", image: "img"};
function tagFor(node) { return (TAGS[node.type] || "div").toUpperCase(); }
// Patch the page in place, element by element (keyed by element number):
// replacing the tree on every push would swallow a click whose mousedown and
// mouseup land on two different copies of the same button.
function update(el, node) {
  el.className = "k-" + node.type + " " + (node["class"] || []).join(" ");
  el.dataset.number = node.number;
  if (node.id) el.id = node.id; else el.removeAttribute("id");
  const props = node.properties || {};
  if (node.type === "input") {
    if (document.activeElement !== el) el.value = props.value ?? "";  // never under the user's caret
    if (props.placeholder) el.placeholder = props.placeholder;
  } else if (node.type === "checkbox") {
    el.type = "checkbox"; el.checked = !!props.checked;
  } else if (props.text !== undefined && !(node.children || []).length) {
    if (el.textContent !== String(props.text)) el.textContent = props.text;
  }
  if (node.type === "bar") el.style.width = (props.width || 0) + "%";
  if (typeof node.style === "object" && node.style) Object.assign(el.style, node.style);
  sync(el, node.children || []);
  return el;
}
function sync(parent, nodes) {
  const byNumber = new Map();
  for (const child of parent.children) byNumber.set(+child.dataset.number, child);
  nodes.forEach((node, i) => {
    let el = byNumber.get(node.number);
    if (!el || el.tagName !== tagFor(node)) el = document.createElement(TAGS[node.type] || "div");
    update(el, node);
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}
// Requests go one after another, so the server sees them in the order the user made them
// (an input change before the click that reads it).
let queue = Promise.resolve();
function post(path, body) {
  const sent = queue.then(() => fetch(path, {method: "POST", headers: {"content-type": "application/json"},
                                             body: JSON.stringify(body)}));
  queue = sent.catch(() => {});
  return sent;
}
const root = document.getElementById("k-root");
root.addEventListener("click", (e) => {
  const target = e.target.closest("[data-number]");
  if (target && target.tagName !== "INPUT") post("/event", {type: "click", number: +target.dataset.number});
});
root.addEventListener("change", (e) => {
  const target = e.target.closest("[data-number]");
  if (target) post("/event", {type: "input", number: +target.dataset.number, value: e.target.value});
});
function show(state) {
  sync(root, [state.tree]);
  document.getElementById("k-errors").textContent = (state.errors || []).join("\n");
  document.body.dataset.version = state.version;
}
fetch("/state").then((r) => r.json()).then(show);
const events = new EventSource("/events");
events.addEventListener("document", (m) => show(JSON.parse(m.data)));
