// This tablet as an enrolled device: its own signing key (non-extractable, kept in IndexedDB as a
// CryptoKey), the device id the node issued, and the gapless per-device sequence (sync.md §4.1).

import * as db from './db.js';
import { b64url, keyIdOf, newSigningKey, publicRaw, sha256Hex, sign } from './crypto.js';
import { api, setDeviceId } from './net.js';
import { canonicalBytes } from './canonical.js';

export async function getDevice() {
  return db.kvGet('device');
}

export async function isEnrolled() {
  const d = await getDevice();
  return Boolean(d && d.device_id);
}

async function ensureKeys() {
  let d = await getDevice();
  if (!d || !d.privateKey) {
    const k = await newSigningKey();
    const raw = await publicRaw(k.publicKey);
    d = { alg: k.alg, privateKey: k.privateKey, publicKey: k.publicKey, publicRaw: b64url(raw), keyId: await keyIdOf(raw), seq: 0 };
    await db.kvSet('device', d);
  }
  return d;
}

/** Register with a one-time enrolment code from a street admin. */
export async function register(code, label) {
  const d = await ensureKeys();
  const res = await api.post('/sync/v1/devices/register', {
    code: code.trim(), public_key: d.publicRaw, alg: d.alg, label,
  });
  const device = { ...d, device_id: res.device_id, label, nodeId: res.node_id || null,
    nodePublicKey: res.node_public_key || null, enrolledAt: new Date().toISOString() };
  await db.kvSet('device', device);
  setDeviceId(device.device_id);
  return device;
}

/** A street admin creates a one-time code for another tablet. */
export async function createEnrolment(label) {
  return api.post('/sync/v1/devices/enrolments', label ? { label } : {});
}

export async function loadDeviceId() {
  const d = await getDevice();
  setDeviceId(d && d.device_id ? d.device_id : null);
  return d;
}

/**
 * Sign `fields` as envelope number `seq` of this device. The caller commits the new sequence and
 * the signed envelope in one transaction (so device_seq stays gapless, sync.md §4.1) and stores it
 * before sending, so a retry resends identical bytes (same payload hash → `duplicate`).
 */
export async function signAs(device, fields, seq) {
  // payload_sha256 covers the payload as sent (sync/envelopes.py), so the node dedupes on it.
  const payloadSha = await sha256Hex(canonicalBytes(fields.payload));
  const body = { ...fields, device_id: device.device_id, device_seq: seq, payload_sha256: payloadSha };
  const value = await sign(device.alg, device.privateKey, canonicalBytes(body));
  return { ...body, sig: { alg: device.alg, key_id: device.keyId, value: b64url(value) } };
}
