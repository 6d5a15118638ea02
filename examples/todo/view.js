// The todo view (JavaScript): turns the visible items into elements.
// Clicking an item asks the Lua model to toggle it.

let rendered = [];

function render(items) {
  for (const id of rendered) kryon.removeElement(id);
  rendered = [];
  const list = kryon.getElementById("items");
  for (const item of items) {
    const el = kryon.createElement("item", {
      id: item.id,
      text: (item.done ? "\u2713 " : "\u2022 ") + item.title,
      class: item.done ? "done" : "open",
    });
    kryon.appendChild(list, el);
    kryon.addEventListener(el, "click", () => kryon.call("model.toggle", item.id));
    rendered.push(item.id);
  }
  return rendered.length;
}
