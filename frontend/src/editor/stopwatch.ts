/** Time a person spends on one image, counting only while the page is visible. */
export class Stopwatch {
  private total = 0;
  private since: number | null = null;

  constructor(private readonly now: () => number = () => performance.now()) {}

  start(): void {
    this.total = 0;
    this.since = this.now();
  }

  pause(): void {
    if (this.since !== null) this.total += this.now() - this.since;
    this.since = null;
  }

  resume(): void {
    if (this.since === null) this.since = this.now();
  }

  elapsedMs(): number {
    const running = this.since === null ? 0 : this.now() - this.since;
    return Math.round(this.total + running);
  }
}
