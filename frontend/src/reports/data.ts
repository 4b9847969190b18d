/** Pure helpers for the report views: URLs, number formatting and series extraction.
 * No DOM and no Chart.js here, so they can be tested in Node. */

export type Row = Record<string, unknown>;

export interface Report {
  tables: Record<string, Row[]>;
  sentence?: string;
  [key: string]: unknown;
}

export const REPORT_NAMES = [
  "learning-curve",
  "accuracy",
  "prelabel-quality",
  "team",
  "agreement",
  "flags",
  "queue",
] as const;

export function reportUrl(projectId: string, name: string): string {
  return `/api/projects/${encodeURIComponent(projectId)}/reports/${encodeURIComponent(name)}/`;
}

/** The CSV download of one table of a report. */
export function csvUrl(projectId: string, name: string, table: string): string {
  return `${reportUrl(projectId, name)}?format=csv&table=${encodeURIComponent(table)}`;
}

export function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A table cell: numbers rounded for reading, empty for null. */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return value.toLocaleString("en");
    return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The values of one column, null where a row has no number there. */
export function column(rows: Row[], key: string): Array<number | null> {
  return rows.map((row) => num(row[key]));
}

export function labels(rows: Row[], key: string): string[] {
  return rows.map((row) => String(row[key] ?? ""));
}

/** {x, y} points for a numeric x axis, leaving out rows missing either value. */
export function points(rows: Row[], xKey: string, yKey: string): Array<{ x: number; y: number }> {
  const out: Array<{ x: number; y: number }> = [];
  for (const row of rows) {
    const x = num(row[xKey]);
    const y = num(row[yKey]);
    if (x !== null && y !== null) out.push({ x, y });
  }
  return out;
}

/** Rows of one queue arm ("strategy" or "random") keyed by model version. */
export function armSeries(rows: Row[], arm: string, versions: string[]): Array<number | null> {
  const byVersion = new Map(rows.filter((r) => r.arm === arm).map((r) => [String(r.version), num(r.acceptance_rate)]));
  return versions.map((v) => byVersion.get(v) ?? null);
}

/** Edits per pre-labeled image, by kind, for the stacked pre-label quality chart. */
export function editsPerImage(row: Row): Record<string, number> {
  const n = num(row.prelabeled) ?? 0;
  const per = (key: string) => (n ? (num(row[key]) ?? 0) / n : 0);
  return {
    added: per("boxes_added"),
    deleted: per("boxes_deleted"),
    moved: per("boxes_moved"),
    "class flips": per("class_flips"),
  };
}
