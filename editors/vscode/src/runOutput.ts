// Live run output (`aisci/runOutput`) in one output channel: each line is prefixed with
// its run and stream. Notifications split lines anywhere, and runs interleave, so the
// prefix goes where a line starts, and a line cut off by another run's text is ended
// first rather than glued to it.

export interface RunOutput {
  folder: string;
  run: number;
  stream: string;
  text: string;
}

export class RunOutputLines {
  private last: string | undefined;
  private midLine = false;

  /** The text to append to the channel for one notification. */
  format(o: RunOutput): string {
    const key = `${o.folder}/run_${o.run} ${o.stream}`;
    let out = '';
    if (o.text === '') return out;
    if (this.last !== key && this.midLine) {
      out += '\n';
      this.midLine = false;
    }
    this.last = key;
    for (const piece of o.text.split(/(?<=\n)/)) {
      if (!this.midLine) out += `[${key}] `;
      out += piece;
      this.midLine = !piece.endsWith('\n');
    }
    return out;
  }
}
