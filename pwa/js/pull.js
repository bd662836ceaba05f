// Pull (sync.md §4.2): read the node's change feed for this user's scope after each upload, and
// when anything changed, refresh the work lists and their case details into the encrypted cache —
// so tasks assigned while the tablet was online are there to open offline later. A 409
// must_reset (node restored from backup, scope changed) starts the feed again; the outbox is
// never touched by a reset.

import * as db from './db.js';
import { ApiError, api } from './net.js';
import { cachedGet } from './data.js';
import { currentUserId } from './session.js';
import { setState, state } from './state.js';
import { forgetKinds, loadKinds } from './kinds.js';
import { PAGE as WORK_PAGE, worklistPath } from './screens/work.js';

const PAGE = 200;
const MAX_PAGES = 20;

async function readFeed() {
  const key = `cursor:${currentUserId()}`;
  let cursor = await db.kvGet(key);
  let changed = 0;
  for (let i = 0; i < MAX_PAGES; i++) {
    let page;
    try {
      page = await api.get(`/sync/v1/changes?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && cursor) {
        cursor = null; // must_reset: download the scope again; unsent work stays in the outbox
        await db.kvSet(key, null);
        setState({ resetNotice: err.message });
        continue;
      }
      throw err;
    }
    changed += (page.changes || []).length;
    cursor = page.next_cursor;
    await db.kvSet(key, cursor); // only after the page is handled (no checkpoint before the apply)
    if (!page.has_more) break;
  }
  return changed;
}

async function refreshWorkLists() {
  const role = state.user ? state.user.role : '';
  // Every role: the kinds' declarations, the first page of "待我办理" and each of its cases, so the
  // work list and the case screens open offline (and an act can be made there, queued in the outbox).
  forgetKinds();
  await loadKinds();
  try {
    const r = await cachedGet(worklistPath({ mine: true }), { personal: true });
    for (const i of (r.data.items || []).slice(0, WORK_PAGE)) {
      await cachedGet(`/api/v1/cases/${encodeURIComponent(i.id)}`, { personal: true });
    }
    if (role === 'dispatcher') await cachedGet('/api/v1/org/units'); // dispatch targets, offline
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err; // a node without the work list yet
  }
  if (role === 'grid_member') {
    const r = await cachedGet('/api/v1/grid/tasks', { personal: true });
    for (const t of (r.data.tasks || []).slice(0, 50)) {
      await cachedGet(`/api/v1/grid/cases/${encodeURIComponent(t.id)}`, { personal: true });
    }
  } else if (['window_clerk', 'community_worker', 'street_admin', 'street_handler'].includes(role)) {
    await cachedGet('/api/v1/hall/queue', { personal: true });
  }
}

/** One pull after a successful upload; failures leave the last cached copies in place. */
export async function pull() {
  try {
    const changed = await readFeed();
    const first = !(await db.kvGet(`pulled:${currentUserId()}`));
    if (changed || first) {
      await refreshWorkLists();
      await db.kvSet(`pulled:${currentUserId()}`, new Date().toISOString());
    }
    return changed;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return 0; // e.g. a device not enrolled yet: the pull waits for enrolment
  }
}
