// A few workers (worker.js) sharing the entries to decrypt: the viewer's own requests go to the
// front of the queue, the background check to the back, so scrolling never waits for it.
import workerCode from "worker:./worker.js";

export class WorkerPool {
  constructor(size = Math.min(4, Math.max(2, navigator.hardwareConcurrency || 2))) {
    this.url = URL.createObjectURL(new Blob([workerCode], { type: "text/javascript" }));
    this.idle = [];
    this.all = [];
    this.queue = [];
    this.waiting = new Map();
    this.nextId = 1;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(this.url);
      worker.onmessage = (e) => this._done(worker, e.data);
      worker.onerror = (e) => this._failed(worker, e);
      this.all.push(worker);
      this.idle.push(worker);
    }
    this.size = size;
  }

  /**
   * Run one job; `urgent` jobs go before the queued ones.
   * @returns {Promise<object>} the worker's result
   */
  run(job, { urgent = false } = {}) {
    return new Promise((resolve, reject) => {
      const task = { id: this.nextId++, job, resolve, reject };
      if (urgent) this.queue.unshift(task);
      else this.queue.push(task);
      this._pump();
    });
  }

  _pump() {
    while (this.idle.length && this.queue.length) {
      const worker = this.idle.pop();
      const task = this.queue.shift();
      this.waiting.set(worker, task);
      worker.postMessage({ id: task.id, job: task.job });
    }
  }

  _done(worker, message) {
    const task = this.waiting.get(worker);
    this.waiting.delete(worker);
    this.idle.push(worker);
    if (task) {
      if (message.error) task.reject(new Error(message.error));
      else task.resolve(message.result);
    }
    this._pump();
  }

  _failed(worker, event) {
    event.preventDefault?.();
    this._done(worker, { error: event.message || "a worker failed" });
  }

  /** Stop every worker; queued jobs are refused. */
  close() {
    for (const task of this.queue) task.reject(new Error("closed"));
    this.queue = [];
    for (const worker of this.all) worker.terminate();
    for (const task of this.waiting.values()) task.reject(new Error("closed"));
    this.waiting.clear();
    URL.revokeObjectURL(this.url);
  }
}
