// A small element builder: h("div", {class: "x"}, child, "text").

export type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** Creates `tag` with `attrs` (on* keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      e.addEventListener(k.slice(2), v);
    } else if (v === true) {
      e.setAttribute(k, "");
    } else {
      e.setAttribute(k, String(v));
    }
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(typeof c === "number" ? String(c) : c);
  }
  return e;
}

/** Replaces the children of `parent`. */
export function replace(parent: Element, ...children: (Child | Child[])[]): void {
  parent.replaceChildren();
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    parent.append(typeof c === "number" ? String(c) : c);
  }
}

/**
 * Makes `from` look like `to`, keeping the nodes that stay (so focus, a
 * hover and references to them survive a redraw); returns the node now
 * in `from`'s place. Listeners are not copied: screens drawn this way
 * act through `data-action` attributes (see views/profiles.ts).
 */
export function morph(from: Node, to: Node): Node {
  if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName) {
    from.parentNode?.replaceChild(to, from);
    return to;
  }
  if (from.nodeType === Node.TEXT_NODE || from.nodeType === Node.COMMENT_NODE) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return from;
  }
  if (from instanceof Element && to instanceof Element) {
    for (const a of [...from.attributes]) {
      if (!to.hasAttribute(a.name)) from.removeAttribute(a.name);
    }
    for (const a of [...to.attributes]) {
      if (from.getAttribute(a.name) !== a.value) from.setAttribute(a.name, a.value);
    }
    const old = [...from.childNodes];
    const next = [...to.childNodes];
    next.forEach((n, i) => {
      if (i < old.length) morph(old[i], n);
      else from.appendChild(n);
    });
    for (const n of old.slice(next.length)) from.removeChild(n);
  }
  return from;
}
