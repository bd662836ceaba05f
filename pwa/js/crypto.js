// WebCrypto helpers: ids, hashes, the per-user data key and its wraps, device signing keys.
//
// Personal data at rest (OWASP ASVS 5.0 14.3.3 exception for offline work, pwa.md §5): every
// outbox payload, photo and cached personal read is AES-256-GCM under a random per-user data key.
// The data key is only ever stored wrapped, and every current slot needs two factors (issue 6 §2:
// "key wrapped by the PIN-derived key and a server-provided key"):
//   password slot: HKDF(PBKDF2(password) || server KEK) — opened at an online login only;
//   PIN slot:      HKDF(PBKDF2(PIN) || server KEK), with the KEK itself sealed under HKDF(PBKDF2(PIN))
//                  so a PIN opens it offline; the PIN slot lives for one shift and goes at logout.
// The server KEK (GET /api/v1/auth/kek) is never stored in the clear (threat model: pwa/README.md).

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

async function pbkdf2Bits(secret, salt, iterations) {
  const base = await crypto.subtle.importKey('raw', enc.encode(secret), 'PBKDF2', false, ['deriveBits']);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, 256));
}

/** An AES-GCM key from HKDF-SHA-256 over the concatenated factors; `info` keeps each use apart. */
async function hkdfKey(parts, salt, info, usages) {
  const ikm = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { ikm.set(p, at); at += p.length; }
  const base = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveKey']);
  ikm.fill(0);
  return crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt, info: enc.encode(info) }, base,
    { name: 'AES-GCM', length: 256 }, false, usages);
}

const SLOT_INFO = 'streetnode/pwa/slot/v2';
const KEK_BOX_INFO = 'streetnode/pwa/kek-box/v2';

/** The server's key-encryption key as bytes, checked: 32 bytes of base64url and a key id. */
export function parseServerKek(body) {
  const raw = body && typeof body.kek === 'string' ? unb64url(body.kek) : null;
  if (!raw || raw.length !== 32 || !body.kid) throw new Error('服务器返回的密钥无效');
  return { kid: String(body.kid), bytes: raw };
}

/**
 * A wrap slot: the data key under HKDF(PBKDF2(secret) || KEK). Without `sealKek` it is the password
 * slot; with it the KEK is also sealed under the secret alone, so that secret (a PIN) opens it offline.
 */
export async function wrapDataKey(dataKey, secret, kek, { sealKek = false, iterations = PBKDF2_ITERATIONS } = {}) {
  const salt = randomBytes(16); const iv = randomBytes(12);
  const bits = await pbkdf2Bits(secret, salt, iterations);
  const wrapKey = await hkdfKey([bits, kek.bytes], salt, SLOT_INFO, ['wrapKey']);
  const wrapped = new Uint8Array(await crypto.subtle.wrapKey('raw', dataKey, wrapKey, { name: 'AES-GCM', iv }));
  const slot = { v: 2, kid: kek.kid, salt, iv, iterations, wrapped };
  if (sealKek) {
    const boxKey = await hkdfKey([bits], salt, KEK_BOX_INFO, ['encrypt']);
    slot.kekBox = await encryptBytes(boxKey, kek.bytes);
  }
  bits.fill(0);
  return slot;
}

/**
 * Opens a slot: {key, kek} or null when a factor is wrong (GCM tag mismatch). `kek` is the server's
 * (online) or null to take it from the slot's sealed copy (offline PIN unlock). Slots written before
 * the server KEK existed (no `v`) open with the secret alone, so an upgrade never strands unsent work.
 */
export async function unwrapDataKey(slot, secret, kek = null) {
  const bits = await pbkdf2Bits(secret, slot.salt, slot.iterations);
  try {
    let wrapKey; let used = kek;
    if (slot.v === 2) {
      if (!used && slot.kekBox) {
        const boxKey = await hkdfKey([bits], slot.salt, KEK_BOX_INFO, ['decrypt']);
        used = { kid: slot.kid, bytes: await decryptBytes(boxKey, slot.kekBox) };
      }
      if (!used || used.kid !== slot.kid) return null;
      wrapKey = await hkdfKey([bits, used.bytes], slot.salt, SLOT_INFO, ['unwrapKey']);
    } else {
      wrapKey = await crypto.subtle.importKey('raw', bits, { name: 'AES-GCM' }, false, ['unwrapKey']);
    }
    const key = await crypto.subtle.unwrapKey('raw', slot.wrapped, wrapKey, { name: 'AES-GCM', iv: slot.iv },
      { name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
    return { key, kek: used };
  } catch (_) {
    return null;
  } finally {
    bits.fill(0);
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
