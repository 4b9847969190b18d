/** Shapes shared by several pages, as the API returns them. */
export interface LabelClass {
  id: number;
  name: string;
  color: string;
  hotkey: string;
  parent: number | null;
}
