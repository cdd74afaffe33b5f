// The status bar item: the running job (or how many) and what this session spent,
// from the server's `aisci/status` notifications; a click lists the jobs.

import * as vscode from 'vscode';

import type { Status } from './palette';

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('aisci.status', vscode.StatusBarAlignment.Left, 10);

  constructor() {
    this.item.name = 'aisci';
    this.item.command = 'aisci.listJobs';
    this.show({ jobs: [], spentUsd: 0, calls: 0 });
    this.item.show();
  }

  show(status: Status): void {
    const spent = `$${status.spentUsd.toFixed(2)}`;
    const [first] = status.jobs;
    if (!first) {
      this.item.text = `$(beaker) aisci ${spent}`;
    } else {
      const more = status.jobs.length > 1 ? ` +${status.jobs.length - 1}` : '';
      this.item.text = `$(sync~spin) ${first.title}${more} · ${spent}`;
    }
    const lines = status.jobs.map((j) => `${j.title}: ${j.target}${j.message ? ` (${j.message})` : ''}`);
    lines.push(`$${status.spentUsd.toFixed(4)} in ${status.calls} model call(s) this session`, 'Click for the job list');
    this.item.tooltip = lines.join('\n');
  }

  /** The server is gone: say so rather than show stale jobs. */
  stopped(): void {
    this.item.text = '$(debug-disconnect) aisci';
    this.item.tooltip = 'The aisci server is not running; see "aisci: Show the server log"';
  }

  dispose(): void {
    this.item.dispose();
  }
}
