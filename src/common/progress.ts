// Progress of long work: a bar on a terminal, and on anything else (a file, a pipe, CI) one plain line at a
// steady interval — step, rate, ETA and the caller's key metric — so `npm run speedrun > log` shows progress.
// The interval is FRUGAL_PROGRESS_S seconds (default 30); the last step is always written. No metrics here.
// Ranks that `--ranks` started write through mpirun's pseudo-terminal: FRUGAL_STDOUT_TTY carries what the
// launching process's stdout really is.
import cliProgress from "cli-progress";

export interface Progress {
  /**
   * step of total done; info is the caller's key metric ("loss 1.234 | 5120 tok/s"); `label` names the part of
   * the work when it changes (a stage's members): the rate and ETA restart with it
   */
  update(step: number, total: number, info: string, label?: string): void;
  stop(): void;
}

export interface ProgressOptions {
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  /** seconds between plain lines (default FRUGAL_PROGRESS_S, else 30) */
  intervalS?: number;
  /** what a step is called in plain lines ("step", "prompts") */
  unit?: string;
}

const noProgress: Progress = { update: () => {}, stop: () => {} };

/** "1h02m", "3m05s", "42s". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  const r = Math.round(s),
    h = Math.floor(r / 3600),
    m = Math.floor((r % 3600) / 60),
    sec = r % 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  return m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** Set by `--ranks` for the ranks it starts: "1" when its own stdout is a terminal, "0" when not. */
export const STDOUT_TTY = "FRUGAL_STDOUT_TTY";

/** A progress display for `label`: a bar on a terminal, plain timed lines elsewhere, nothing when quiet. */
export function progress(label: string, o: ProgressOptions = {}): Progress {
  if (o.quiet) return noProgress;
  const stream = o.stream ?? process.stdout,
    told = process.env[STDOUT_TTY];
  const tty = stream === process.stdout && told !== undefined ? told === "1" : stream.isTTY;
  return tty ? barProgress(label, stream) : lineProgress(label, stream, o);
}

function barProgress(label: string, stream: NodeJS.WriteStream): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: "{stage} |{bar}| {value}/{total} | {info} | ETA {eta_formatted}",
      barsize: 24,
      hideCursor: true,
      etaBuffer: 20,
      stream,
    },
    cliProgress.Presets.shades_classic,
  );
  let current: string | null = null;
  return {
    update(step, total, info, part = label) {
      if (part !== current) {
        if (current !== null) bar.stop(); // each part (a stage's member) keeps its own finished bar
        bar.start(total, step - 1, { stage: part.padEnd(10), info: "" });
      }
      current = part;
      bar.update(step, { stage: part.padEnd(10), info });
    },
    stop: () => bar.stop(),
  };
}

function lineProgress(label: string, stream: NodeJS.WriteStream, o: ProgressOptions): Progress {
  const intervalMs = 1000 * (o.intervalS ?? (Number(process.env.FRUGAL_PROGRESS_S) || 30)),
    unit = o.unit ?? "step";
  let first: { step: number; t: number; part: string } | null = null,
    lastLine = -Infinity,
    pending: string | null = null;
  /** One line at time `now`; `since` is where this part's rate is counted from (its first step has none). */
  const line = (
    since: { step: number; t: number; part: string },
    step: number,
    total: number,
    info: string,
    now: number,
  ) => {
    const done = step - since.step,
      elapsedS = (now - since.t) / 1000;
    const rate = done > 0 && elapsedS > 0 ? done / elapsedS : null;
    const eta = rate ? formatSeconds((total - step) / rate) : "?";
    const pct = total > 0 ? ((100 * step) / total).toFixed(0) : "?";
    const speed = !rate ? "" : rate >= 1 ? `${rate.toFixed(2)} ${unit}s/s` : `${(1 / rate).toFixed(1)} s/${unit}`;
    const parts = [`${since.part} ${unit} ${step}/${total} (${pct}%)`, speed, `ETA ${eta}`, info].filter(Boolean);
    return parts.join(" | ") + "\n";
  };
  return {
    update(step, total, info, part = label) {
      const now = performance.now();
      if (first?.part !== part) first = { step: step - 1, t: now, part };
      const text = line(first, step, total, info, now);
      if (now - lastLine >= intervalMs || step === total) {
        stream.write(text);
        lastLine = now;
        pending = null;
      } else pending = text;
    },
    stop() {
      if (pending) stream.write(pending);
      pending = null;
    },
  };
}
