/** The class tree as the tree API returns it, and the decisions the editor makes on it
 * (where a class may move, what a merge will do) without the DOM, so they are unit-tested. */

export interface TreeNode {
  id: number;
  name: string;
  color: string;
  hotkey: string;
  parent: number | null;
  order: number;
  depth: number;
  path: string[];
  children: number[];
  labels: number;
  subtree_labels: number;
}

export class ClassTree {
  private readonly byId = new Map<number, TreeNode>();

  /** `nodes` depth-first, as `GET .../label-classes/tree/` answers. */
  constructor(readonly nodes: TreeNode[]) {
    for (const node of nodes) this.byId.set(node.id, node);
  }

  get(id: number): TreeNode {
    const node = this.byId.get(id);
    if (!node) throw new Error(`no class ${id} in the tree`);
    return node;
  }

  /** The class and every class below it. */
  subtree(id: number): Set<number> {
    const found = new Set<number>();
    const stack = [id];
    while (stack.length) {
      const current = stack.pop()!;
      if (found.has(current)) continue;
      found.add(current);
      stack.push(...(this.byId.get(current)?.children ?? []));
    }
    return found;
  }

  /** Whether `id` may move under `parent` (null: the top level): not under itself or a
   * class below it (a loop), and not where it is already. */
  canMove(id: number, parent: number | null): boolean {
    if (this.get(id).parent === parent) return false;
    return parent === null || !this.subtree(id).has(parent);
  }

  /** The classes `id` may move under, in tree order. */
  moveTargets(id: number): TreeNode[] {
    return this.nodes.filter((node) => this.canMove(id, node.id));
  }

  /** The classes `id` may merge into: any but itself and the classes below it (the server
   * refuses those; merge the other way). */
  mergeTargets(id: number): TreeNode[] {
    const below = this.subtree(id);
    return this.nodes.filter((node) => !below.has(node.id));
  }

  /** One level up: the parent's parent (null: the top); undefined at the top already. */
  outdentTarget(id: number): number | null | undefined {
    const parent = this.get(id).parent;
    return parent === null ? undefined : this.get(parent).parent;
  }

  /** One level down: under the sibling just above; undefined for a first child. */
  indentTarget(id: number): number | undefined {
    const node = this.get(id);
    const siblings = this.nodes.filter((other) => other.parent === node.parent);
    const index = siblings.findIndex((other) => other.id === id);
    return index > 0 ? siblings[index - 1].id : undefined;
  }

  /** The question the merge button asks, with the count of labels that will move. */
  mergeQuestion(sourceId: number, targetId: number): string {
    const source = this.get(sourceId);
    const target = this.get(targetId);
    const labels = `${source.labels} label${source.labels === 1 ? "" : "s"}`;
    const children = source.children.length
      ? ` Its ${source.children.length} subclass${source.children.length === 1 ? " moves" : "es move"} under "${target.name}".`
      : "";
    return `Merge "${source.name}" into "${target.name}"? ${labels} will move to "${target.name}" and "${source.name}" is deleted.${children}`;
  }

  /** What the count beside a class says: its own labels, and with the classes below. */
  countText(id: number): string {
    const node = this.get(id);
    const own = `${node.labels} label${node.labels === 1 ? "" : "s"}`;
    return node.subtree_labels !== node.labels ? `${own} (${node.subtree_labels} with subclasses)` : own;
  }
}

/** A taxonomy the vision-language assist proposed (`POST .../assist/taxonomy/`). */
export interface SuggestedClass {
  name: string;
  children: SuggestedClass[];
}

export interface SuggestionRow {
  name: string;
  parent: string | null;
  depth: number;
  exists: boolean;
  /** Addable now: new, and its parent (if any) exists already (classes are added top-down). */
  addable: boolean;
}

/** The suggestion depth-first, each entry told apart by whether the project has a class of
 * that name already (case aside) and whether it can be added now. */
export function suggestionRows(suggested: SuggestedClass[], existing: string[]): SuggestionRow[] {
  const have = new Set(existing.map((name) => name.trim().toLowerCase()));
  const rows: SuggestionRow[] = [];
  const visit = (node: SuggestedClass, parent: string | null, depth: number) => {
    const exists = have.has(node.name.trim().toLowerCase());
    const parentExists = parent === null || have.has(parent.trim().toLowerCase());
    rows.push({ name: node.name, parent, depth, exists, addable: !exists && parentExists });
    for (const child of node.children) visit(child, node.name, depth + 1);
  };
  for (const node of suggested) visit(node, null, 0);
  return rows;
}
