// WebCrypto helpers: ids, hashes, the per-user data key and its wraps, device signing keys.
//
// Personal data at rest (OWASP ASVS 5.0 14.3.3 exception for offline work, pwa.md §5): every
// outbox payload, photo and cached personal read is AES-256-GCM under a random per-user data key.
// The data key is only ever stored wrapped: under a PIN-derived key (offline unlock within a
// shift) and under a password-derived key (recovery after a successful online login).

const enc = new TextEncoder();
const dec = new TextDecoder();
export const PBKDF2_ITERATIONS = 600000; // OWASP 2023 figure for PBKDF2-HMAC-SHA256

export function b64url(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function unb64url(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

export function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

export async function sha256Hex(data) {
  const bytes = typeof data === 'string' ? enc.encode(data) : data;
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

let lastMs = 0; let counter = 0;
/** UUIDv7 (RFC 9562): time-ordered, so the node's B-tree inserts stay append-mostly. */
export function uuid7() {
  let ms = Date.now();
  if (ms <= lastMs) { counter += 1; if (counter > 0xfff) { lastMs += 1; counter = 0; } ms = lastMs; } else { lastMs = ms; counter = 0; }
  const b = randomBytes(16);
  for (let i = 5; i >= 0; i--) { b[i] = ms % 256; ms = Math.floor(ms / 256); }
  b[6] = 0x70 | ((counter >> 8) & 0x0f); b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8] & 0x3f);
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- data key -------------------------------------------------------------------------------

export async function newDataKey() {
  // Extractable only so it can be re-wrapped under a new PIN; it is never stored unwrapped.
  return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
}

async function deriveWrappingKey(secret, salt, iterations) {
  const base = await crypto.subtle.importKey('raw', enc.encode(secret), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base,
    { name: 'AES-GCM', length: 256 }, false, ['wrapKey', 'unwrapKey']);
}

/** A wrap slot: the data key encrypted under a key derived from `secret` (a PIN or a password). */
export async function wrapDataKey(dataKey, secret, iterations = PBKDF2_ITERATIONS) {
  const salt = randomBytes(16); const iv = randomBytes(12);
  const kek = await deriveWrappingKey(secret, salt, iterations);
  const wrapped = await crypto.subtle.wrapKey('raw', dataKey, kek, { name: 'AES-GCM', iv });
  return { salt, iv, iterations, wrapped };
}

/** The data key from a slot, or null when the secret is wrong (GCM tag mismatch). */
export async function unwrapDataKey(slot, secret) {
  const kek = await deriveWrappingKey(secret, slot.salt, slot.iterations);
  try {
    return await crypto.subtle.unwrapKey('raw', slot.wrapped, kek, { name: 'AES-GCM', iv: slot.iv },
      { name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
  } catch (_) {
    return null;
  }
}

export async function encryptBytes(key, bytes) {
  const iv = randomBytes(12);
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, bytes);
  return { iv, ct };
}

export async function decryptBytes(key, box) {
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: box.iv }, key, box.ct));
}

export async function encryptJSON(key, value) {
  return encryptBytes(key, enc.encode(JSON.stringify(value)));
}

export async function decryptJSON(key, box) {
  return JSON.parse(dec.decode(await decryptBytes(key, box)));
}

// ---- device signing key -----------------------------------------------------------------------

/** Ed25519 where WebCrypto has it (Chromium 137+), else ECDSA P-256 (raw r||s), DESIGN §6. */
export async function newSigningKey() {
  try {
    const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    return { alg: 'Ed25519', privateKey: kp.privateKey, publicKey: kp.publicKey };
  } catch (_) {
    const kp = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    return { alg: 'ECDSA-P256-SHA256', privateKey: kp.privateKey, publicKey: kp.publicKey };
  }
}

export async function publicRaw(publicKey) {
  return new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
}

/** key_id as the node computes it: the first 16 hex digits of sha256(raw public key). */
export async function keyIdOf(raw) {
  return (await sha256Hex(raw)).slice(0, 16);
}

export async function sign(alg, privateKey, bytes) {
  const params = alg === 'Ed25519' ? { name: 'Ed25519' } : { name: 'ECDSA', hash: 'SHA-256' };
  return new Uint8Array(await crypto.subtle.sign(params, privateKey, bytes));
}
