// Bounded concurrency for the gateway's requests: at most `limit` fetches at once (a phone's
// browser opens ~6 connections to one host anyway), the image the viewer waits for first,
// prefetches of the stack around it after, so a swipe finds its slices already here.

export class FetchQueue {
  /** @param {number} [limit] fetches in flight at once */
  constructor(limit = 6) {
    this.limit = limit;
    this.active = 0;
    this.urgent = [];
    this.later = [];
  }

  /**
   * Run `job` when a slot is free.
   * @template T
   * @param {() => Promise<T>} job
   * @param {{urgent?: boolean}} [options] urgent: before every waiting prefetch
   * @returns {Promise<T>}
   */
  run(job, { urgent = true } = {}) {
    return new Promise((resolve, reject) => {
      (urgent ? this.urgent : this.later).push({ job, resolve, reject });
      this._pump();
    });
  }

  /** Forget the waiting prefetches (the viewer moved elsewhere); running ones finish. */
  dropLater() {
    for (const w of this.later.splice(0)) w.reject(new Error("prefetch dropped"));
  }

  _pump() {
    while (this.active < this.limit && (this.urgent.length || this.later.length)) {
      const w = this.urgent.shift() ?? this.later.shift();
      this.active++;
      Promise.resolve().then(w.job).then(w.resolve, w.reject).finally(() => {
        this.active--;
        this._pump();
      });
    }
  }
}
