// Hash router: one table of screens, each a module exporting render(main, params, query).

import { clearDirty, state } from './state.js';

const ROUTES = [
  { re: /^\/login$/, mod: 'login', title: '登录', pub: true },
  { re: /^\/track(?:\/[^/]+)?$/, mod: 'kiosk', fn: 'renderTrack', title: '办件进度查询', pub: true, kiosk: true },
  { re: /^\/rate$/, mod: 'kiosk', fn: 'renderRate', title: '服务评价', pub: true, kiosk: true },
  { re: /^\/pin$/, mod: 'login', fn: 'renderPinSetup', title: '设置解锁 PIN' },
  { re: /^\/(home)?$/, mod: 'home', title: '首页' },
  { re: /^\/outbox$/, mod: 'outbox', title: '待上传与同步' },
  { re: /^\/device$/, mod: 'device', title: '设备登记' },
  { re: /^\/tasks$/, mod: 'tasks', title: '我的任务' },
  { re: /^\/task\/([^/]+)$/, mod: 'tasks', fn: 'renderTask', title: '任务处置' },
  { re: /^\/report$/, mod: 'report', title: '上报事件' },
  { re: /^\/patrol$/, mod: 'patrol', title: '巡查日志' },
  { re: /^\/catalogue$/, mod: 'catalogue', title: '办事指南' },
  { re: /^\/item\/([^/]+)$/, mod: 'catalogue', fn: 'renderItem', title: '事项指南' },
  { re: /^\/apply\/([^/]+)$/, mod: 'apply', title: '新建申请' },
  { re: /^\/receipt\/([^/]+)$/, mod: 'receipt', title: '受理回执' },
  { re: /^\/queue$/, mod: 'queue', title: '今日办件队列' },
  { re: /^\/work$/, mod: 'work', title: '待办' },
  { re: /^\/case\/([^/]+)$/, mod: 'case', title: '事项办理' },
];

let cleanup = null;
let onLockedRoute = null;

export function setLockedRouteHandler(fn) { onLockedRoute = fn; }

export function go(path) {
  if (window.location.hash === `#${path}`) route();
  else window.location.hash = `#${path}`;
}

export function parseHash() {
  const h = (window.location.hash || '#/').slice(1);
  const [path, qs] = h.split('?');
  return { path: path || '/', query: new URLSearchParams(qs || '') };
}

export async function route() {
  const { path, query } = parseHash();
  const r = ROUTES.find((x) => x.re.test(path)) || ROUTES.find((x) => x.mod === 'home');
  const main = document.getElementById('main');
  document.body.classList.toggle('kiosk', Boolean(r.kiosk));
  if (!r.pub && !state.unlocked) {
    if (onLockedRoute && (await onLockedRoute())) return;
    if (path !== '/login') { window.location.hash = '#/login'; return; }
  }
  if (cleanup) { try { cleanup(); } catch (_) { /* screen gone */ } cleanup = null; }
  clearDirty();
  // Each navigation renders into its own container: a slower, superseded screen finishes into a
  // detached node instead of painting over the screen the user went to.
  const view = document.createElement('div');
  main.replaceChildren(view);
  const params = path.match(r.re).slice(1).map(decodeURIComponent);
  document.title = `${r.title} · 街道通`;
  const mod = await import(`./screens/${r.mod}.js`);
  const result = await mod[r.fn || 'render'](view, params, query);
  if (!view.isConnected) { if (typeof result === 'function') result(); return; }
  if (typeof result === 'function') cleanup = result;
  const h1 = view.querySelector('h1');
  if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
  highlightTab(path);
  const { applyUpdateWhenClean } = await import('./actions.js');
  applyUpdateWhenClean();
}

function highlightTab(path) {
  for (const a of document.querySelectorAll('#tabbar a')) {
    const target = a.getAttribute('href').slice(1);
    if (target === path || (target !== '/home' && path.startsWith(target))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

export function startRouter() {
  window.addEventListener('hashchange', () => route());
  route();
}
