// A line diff between two texts (two versions of a skill), for the editor. Pure: unit-tested.
//
// Longest common subsequence over lines, after trimming the lines both texts share at the
// start and the end (a skill edit changes a few lines of a few hundred, so the table stays
// small); texts too large for the table are compared as one removed and one added block.

const MAX_CELLS = 4_000_000;

/** [{op: "same" | "add" | "del", line, oldNo, newNo}] turning `before` into `after`. */
export function lineDiff(before, after) {
  const a = String(before).split("\n");
  const b = String(after).split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const head = a.slice(0, start).map((line, i) => ({ op: "same", line, oldNo: i + 1, newNo: i + 1 }));
  const middle = diffMiddle(a.slice(start, endA), b.slice(start, endB), start);
  const tail = a.slice(endA).map((line, i) => ({
    op: "same", line, oldNo: endA + i + 1, newNo: endB + i + 1,
  }));
  return [...head, ...middle, ...tail];
}

function diffMiddle(a, b, offset) {
  const n = a.length;
  const m = b.length;
  if ((n + 1) * (m + 1) > MAX_CELLS) {
    return [
      ...a.map((line, i) => ({ op: "del", line, oldNo: offset + i + 1, newNo: null })),
      ...b.map((line, j) => ({ op: "add", line, oldNo: null, newNo: offset + j + 1 })),
    ];
  }
  // lcs[i][j]: the longest common subsequence of a[i:] and b[j:].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push({ op: "same", line: a[i], oldNo: offset + i + 1, newNo: offset + j + 1 });
      i += 1;
      j += 1;
    } else if (j < m && (i === n || lcs[i][j + 1] > lcs[i + 1][j])) { // a tie: removed first
      out.push({ op: "add", line: b[j], oldNo: null, newNo: offset + j + 1 });
      j += 1;
    } else {
      out.push({ op: "del", line: a[i], oldNo: offset + i + 1, newNo: null });
      i += 1;
    }
  }
  return out;
}

/**
 * The diff cut to its changes with `context` unchanged lines around each; a run of hidden
 * unchanged lines becomes one {op: "gap", count}. Also {added, removed} counts.
 */
export function diffHunks(rows, context = 2) {
  const near = rows.map(() => false);
  rows.forEach((row, k) => {
    if (row.op === "same") return;
    for (let d = -context; d <= context; d += 1) if (rows[k + d]) near[k + d] = true;
  });
  const shown = [];
  let hidden = 0;
  rows.forEach((row, k) => {
    if (near[k]) {
      if (hidden) shown.push({ op: "gap", count: hidden });
      hidden = 0;
      shown.push(row);
    } else {
      hidden += 1;
    }
  });
  if (hidden && shown.length) shown.push({ op: "gap", count: hidden });
  return {
    rows: shown,
    added: rows.filter((r) => r.op === "add").length,
    removed: rows.filter((r) => r.op === "del").length,
  };
}
