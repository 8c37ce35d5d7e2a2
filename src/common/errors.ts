// Errors are data: a stable `code`, the message says what was expected, what arrived and how to fix it.
// Bugs in frugal itself use internal(), whose message starts with "internal:" so users know to report it.

export class FrugalError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FrugalError";
    this.code = code;
  }
}

export function internal(message: string): FrugalError {
  return new FrugalError("INTERNAL", `internal: ${message} (this is a bug in frugal; please report it)`);
}

export function shapeError(op: string, got: readonly number[] | string, want: string): FrugalError {
  const g = typeof got === "string" ? got : `[${got.join(", ")}]`;
  return new FrugalError("SHAPE", `${op}: expected ${want}, got ${g}`);
}
