// Canonical JSON, byte for byte what server/domain/canonical.py produces:
// json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8").
// Signatures and payload hashes are computed over these bytes on both sides, so any difference
// (key order, escaping, number form) makes every envelope fail verification.

// Python sorts str keys by code point; Array.prototype.sort compares UTF-16 code units, which
// differs only for characters outside the BMP, so compare code points explicitly.
function compareCodePoints(a, b) {
  const ai = a[Symbol.iterator](); const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next(); const y = bi.next();
    if (x.done || y.done) return x.done === y.done ? 0 : (x.done ? -1 : 1);
    const cx = x.value.codePointAt(0); const cy = y.value.codePointAt(0);
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF]/;

function str(s) {
  // JSON.stringify and Python escape the same set (\" \\ \b \f \n \r \t, other C0 as \u00xx
  // lowercase) and leave everything else, U+2028/2029 included, as UTF-8.
  if (LONE_SURROGATE.test(s)) throw new TypeError('字符串含无效字符（孤立代理项）');
  return JSON.stringify(s);
}

function ser(v, path) {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return v ? 'true' : 'false';
    case 'string': return str(v);
    case 'number': {
      if (Number.isSafeInteger(v)) return String(v);
      // Both sides print the shortest round-trip decimal, but Python switches to exponent form
      // below 1e-4 and from 1e16 where JS does not (1e-05 vs 0.00001): allow only the shared range.
      const a = Math.abs(v);
      if (Number.isFinite(v) && !Number.isInteger(v) && a >= 1e-4 && a < 1e16) return String(v);
      throw new TypeError(`${path || '值'} 超出可签名的数值范围（请用整数或字符串）`);
    }
    case 'object': {
      if (Array.isArray(v)) return '[' + v.map((x, i) => ser(x, `${path}[${i}]`)).join(',') + ']';
      const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort(compareCodePoints);
      return '{' + keys.map((k) => str(k) + ':' + ser(v[k], path ? `${path}.${k}` : k)).join(',') + '}';
    }
    default:
      throw new TypeError(`${path || '值'} 不是 JSON 值`);
  }
}

export function canonicalJSON(value) {
  return ser(value, '');
}

export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalJSON(value));
}
