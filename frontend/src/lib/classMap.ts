/** The import page's class mapping: one `their category = our class` a line. */
export function parseClassMap(text: string): Record<string, string> {
  const map: Record<string, string> = {};
  text.split("\n").forEach((line, index) => {
    if (!line.trim()) return;
    const at = line.indexOf("=");
    const theirs = at < 0 ? "" : line.slice(0, at).trim();
    const ours = at < 0 ? "" : line.slice(at + 1).trim();
    if (!theirs || !ours) throw new Error(`Class mapping line ${index + 1}: write "their category = our class".`);
    map[theirs] = ours;
  });
  return map;
}
