// Errors are data: a stable `code` from one union, and a message that says what was expected, what arrived
// and how to fix it. Bugs in frugal itself are raised only through internal(), whose message starts with
// "internal:" so users know to report it. No logging or exit handling here (the CLI decides).

/** Every code a FrugalError can carry; a new kind of failure adds its code here. */
export const ERROR_CODES = [
  "ARCH",
  "ARG",
  "BUSY",
  "CHECKPOINT",
  "CONFIG",
  "CONTEXT",
  "DATA",
  "DEPENDENCY",
  "DEVICE",
  "EMPTY",
  "EXPORT",
  "GUARD",
  "INDEX",
  "INPUT",
  "LORA",
  "INTERNAL",
  "NATIVE",
  "NONFINITE",
  "OPTIMIZER",
  "POLICY",
  "PRICES",
  "RANKS",
  "RECIPE",
  "REQUEST",
  "RUN",
  "SAFETENSORS",
  "SAMPLE",
  "SHAPE",
  "STALE",
  "TASK",
  "TOKENIZER",
  "WRITE",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A user-facing error; use internal() for frugal's own bugs (the type system keeps "INTERNAL" out of here). */
export class FrugalError extends Error {
  readonly code: ErrorCode;
  constructor(code: Exclude<ErrorCode, "INTERNAL">, message: string, options?: { cause?: unknown });
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FrugalError";
    this.code = code;
  }
}

/** frugal's own bug: code INTERNAL, a message starting with "internal:". */
export function internal(message: string, options?: { cause?: unknown }): FrugalError {
  // the public constructor refuses "INTERNAL"; this is the one place that may pass it
  const Any = FrugalError as new (code: ErrorCode, message: string, options?: { cause?: unknown }) => FrugalError;
  return new Any("INTERNAL", `internal: ${message} (this is a bug in frugal; please report it)`, options);
}

export function shapeError(op: string, got: readonly number[] | string, want: string): FrugalError {
  const g = typeof got === "string" ? got : `[${got.join(", ")}]`;
  return new FrugalError("SHAPE", `${op}: expected ${want}, got ${g}`);
}
