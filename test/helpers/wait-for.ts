/**
 * The tests' one polling helper: calls `check` every `everyMs` until it returns a truthy value,
 * which it resolves with. A check that throws is retried; on timeout the error names `what` and
 * the last thrown error. Use it wherever a condition exists instead of sleeping.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 50): Promise<Exclude<NonNullable<T>, false | 0 | "">> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Exclude<NonNullable<T>, false | 0 | "">;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
