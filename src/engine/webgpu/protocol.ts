// The messages between the engine thread (bridge.ts) and the GPU thread (worker.ts), and the answer flags the
// engine waits on. Types and constants only: importing it starts nothing.
export type Command =
  | { t: "init"; sab: SharedArrayBuffer; backend: string }
  | { t: "staging"; sab: SharedArrayBuffer }
  | { t: "alloc"; id: number; bytes: number }
  | { t: "free"; id: number }
  | { t: "write"; id: number; off: number; data: Uint8Array }
  | { t: "clear"; id: number; off: number; bytes: number }
  | { t: "run"; k: string; ids: number[]; u: ArrayBuffer; n: [number, number, number] }
  | { t: "read"; id: number; off: number; bytes: number }
  | { t: "lose" };

/** Answer flags in ctrl[0]: the main thread waits while it is PENDING. */
export const PENDING = 0,
  OK = 1,
  FAILED = 2;
