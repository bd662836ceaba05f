// Case kinds as the node declares them (GET /api/v1/kinds): states, transitions with their payload
// schemas, list columns and the clock that matters in each state. The generic work list and case
// screen draw everything from this, so a new kind needs no screen of its own. Kept in the cache so
// the screens also work offline; a node without the endpoint yields no kinds (screens then rely on
// what each case detail says).

import { ApiError, NetworkError } from './net.js';
import { cachedGet } from './data.js';

// Staff roles in Chinese (server/domain/roles.py ROLE_LABELS), for the timeline's "who acted".
export const ROLE_LABELS = {
  district_admin: '区级管理员', district_approver: '区职能部门审批人', street_admin: '街道管理员',
  window_clerk: '窗口受理员', street_handler: '街道承办人', confidentiality_reviewer: '保密审查员',
  supervisor: '监察员', shift_leader: '值班长', dispatcher: '派遣员', grid_member: '网格员',
  community_worker: '社区工作者', resident: '居民', system: '系统',
};

let memo = null;

/** {kinds: {name: KIND}, at, stale} — never throws: without metadata the screens still work. */
export async function loadKinds() {
  if (memo && !memo.stale) return memo;
  try {
    const r = await cachedGet('/api/v1/kinds');
    const kinds = {};
    for (const k of r.data.kinds || []) kinds[k.name] = k;
    memo = { kinds, at: r.at, stale: r.stale };
  } catch (err) {
    if (!(err instanceof ApiError) && !(err instanceof NetworkError)) console.warn(err);
    memo = memo || { kinds: {}, at: null, stale: true };
  }
  return memo;
}

export function forgetKinds() { memo = null; }

// Only for a node that does not serve the kinds' declarations yet.
const FALLBACK_KIND_LABELS = { grid_incident: '网格事件', service_application: '政务服务办件', grid_preventive: '预防性任务' };

export function kindLabel(kinds, name) {
  return (kinds[name] && kinds[name].label) || FALLBACK_KIND_LABELS[name] || name;
}

export function stateLabel(kinds, kind, st) {
  const k = kinds[kind];
  return (k && k.states && k.states[st]) || st;
}

export function transitionOf(kinds, kind, name) {
  const k = kinds[kind];
  return (k && (k.transitions || []).find((t) => t.name === name)) || null;
}

/** What `role` may do on a case in state `st`, from the declaration alone (used while offline). */
export function declaredActions(kinds, kind, st, role) {
  const k = kinds[kind];
  if (!k) return [];
  return (k.transitions || []).filter((t) => !t.system && !t.hidden && !t.creates && (t.from || []).includes(st)
    && (t.roles || []).includes(role))
    .map((t) => ({ name: t.name, label: t.label, required: t.required || [], schema: t.schema || null, legal_basis: t.legal_basis || '' }));
}

/** The kinds a role takes part in (any non-system transition names the role). */
export function kindsForRole(kinds, role) {
  return Object.values(kinds).filter((k) => (k.transitions || []).some((t) => !t.system && (t.roles || []).includes(role)));
}
