/**
 * A small strict XML well-formedness checker for the SVG tests (no XML parser ships with the
 * project): one root element, balanced and properly nested tags, quoted and unique attributes,
 * only the five predefined or numeric entities, no stray "<" or "&". Returns the element tree.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: Array<XmlElement | string>;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_.:-]*/;
const ENTITY = /&(?:lt|gt|amp|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/g;

function decode(text: string, where: string): string {
  const stripped = text.replace(ENTITY, '');
  if (stripped.includes('&')) throw new Error(`bad entity or stray "&" in ${where}: ${JSON.stringify(text.slice(0, 80))}`);
  if (stripped.includes('<')) throw new Error(`stray "<" in ${where}`);
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#x([0-9A-Fa-f]+);/g, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&amp;/g, '&');
}

export function parseXml(xml: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const fail = (msg: string): never => {
    throw new Error(`${msg} at offset ${i}: ${JSON.stringify(xml.slice(i, i + 60))}`);
  };
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    i = end + 2;
  }
  while (i < xml.length) {
    if (xml[i] !== '<') {
      const next = xml.indexOf('<', i);
      const text = xml.slice(i, next < 0 ? xml.length : next);
      const decoded = decode(text, 'text');
      if (stack.length === 0) {
        if (text.trim() !== '') fail('text outside the root element');
      } else if (decoded !== '') stack[stack.length - 1].children.push(decoded);
      i = next < 0 ? xml.length : next;
      continue;
    }
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      if (xml.slice(i + 4, end).includes('--')) fail('"--" inside a comment');
      i = end + 3;
      continue;
    }
    if (xml.startsWith('<![CDATA[', i)) {
      if (stack.length === 0) fail('CDATA outside the root element');
      const end = xml.indexOf(']]>', i);
      if (end < 0) fail('unterminated CDATA');
      stack[stack.length - 1].children.push(xml.slice(i + 9, end));
      i = end + 3;
      continue;
    }
    if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
      continue;
    }
    if (xml.startsWith('<!', i)) fail('unexpected declaration');
    if (xml.startsWith('</', i)) {
      const m = NAME.exec(xml.slice(i + 2));
      if (!m) fail('bad closing tag');
      const name = m![0];
      let j = i + 2 + name.length;
      while (/\s/.test(xml[j] ?? '')) j++;
      if (xml[j] !== '>') fail('bad closing tag');
      const open = stack.pop();
      if (!open || open.name !== name) fail(`closing </${name}> does not match <${open?.name ?? '(none)'}>`);
      i = j + 1;
      continue;
    }
    // Start tag.
    const m = NAME.exec(xml.slice(i + 1));
    if (!m) fail('bad tag name');
    const el: XmlElement = { name: m![0], attributes: {}, children: [] };
    let j = i + 1 + el.name.length;
    let selfClosing = false;
    for (;;) {
      const ws = j;
      while (/\s/.test(xml[j] ?? '')) j++;
      if (xml[j] === '>') {
        j++;
        break;
      }
      if (xml.startsWith('/>', j)) {
        selfClosing = true;
        j += 2;
        break;
      }
      if (j === ws) {
        i = j;
        fail('attributes must be separated by white space');
      }
      const an = NAME.exec(xml.slice(j));
      if (!an) {
        i = j;
        fail('bad attribute name');
      }
      const attr = an![0];
      j += attr.length;
      while (/\s/.test(xml[j] ?? '')) j++;
      if (xml[j] !== '=') {
        i = j;
        fail(`attribute ${attr} without a value`);
      }
      j++;
      while (/\s/.test(xml[j] ?? '')) j++;
      const quote = xml[j];
      if (quote !== '"' && quote !== "'") {
        i = j;
        fail(`unquoted value of ${attr}`);
      }
      const end = xml.indexOf(quote, j + 1);
      if (end < 0) fail('unterminated attribute value');
      if (attr in el.attributes) {
        i = j;
        fail(`duplicate attribute ${attr}`);
      }
      el.attributes[attr] = decode(xml.slice(j + 1, end), `attribute ${attr}`);
      j = end + 1;
    }
    if (stack.length === 0) {
      if (root) fail('a second root element');
      root = el;
    } else stack[stack.length - 1].children.push(el);
    if (!selfClosing) stack.push(el);
    i = j;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

/** All elements of a tree, depth first. */
export function elements(el: XmlElement): XmlElement[] {
  return [el, ...el.children.flatMap((c) => (typeof c === 'string' ? [] : elements(c)))];
}

/** The text content of an element (all descendant text). */
export function textOf(el: XmlElement): string {
  return el.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
}
