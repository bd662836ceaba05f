// Location for reports and checks: GPS when the tablet has a fix, else an address of the grid
// (or the grid's centre with the place typed by hand), marked as approximate.

import { cachedGet } from './data.js';
import { state } from './state.js';

export function gpsPosition(timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error('本机不支持定位')); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lng: round(p.coords.longitude), lat: round(p.coords.latitude), accuracy_m: Math.round(p.coords.accuracy || 0) }),
      (err) => reject(new Error(err.code === 1 ? '未获得定位权限' : '暂时无法定位，请改用地址')),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 60000 },
    );
  });
}

// Seven decimals (~1 cm) keep coordinates inside the number range both canonical JSON encoders share.
function round(x) { return Math.round(x * 1e7) / 1e7; }

export async function myGrid() {
  try {
    const r = await cachedGet('/api/v1/grid/grids', { personal: true });
    const grids = r.data.grids || [];
    const unit = state.user ? state.user.org_unit : '';
    return grids.find((g) => g.code === unit) || grids[0] || null;
  } catch (_) {
    return null;
  }
}

export function centroid(polygon) {
  if (!polygon || !polygon.length) return null;
  const pts = polygon.slice(0, polygon.length > 1 && polygon[0][0] === polygon[polygon.length - 1][0]
    && polygon[0][1] === polygon[polygon.length - 1][1] ? -1 : undefined);
  const lng = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const lat = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  return { lng: round(lng), lat: round(lat) };
}

export function inside(polygon, lng, lat) {
  if (!polygon || polygon.length < 3) return true;
  let hit = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i]; const [xj, yj] = polygon[j];
    if ((yi > lat) !== (yj > lat) && lng < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

/** A GeoPoint from an address entry {address, lng, lat} or the grid centre, with the typed place. */
export function pointFromAddress(grid, place) {
  const known = grid && (grid.addresses || []).find((a) => (a.address || a.name) === place);
  if (known && known.lng && known.lat) return { lng: round(known.lng), lat: round(known.lat), place, accuracy_m: 50 };
  const c = grid ? centroid(grid.polygon) : null;
  if (!c) return null;
  // Approximate: the grid's centre; the accuracy tells the handler how far off it may be.
  return { ...c, place, accuracy_m: 500 };
}
