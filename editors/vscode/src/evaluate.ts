// The `tvix/evaluate` request of "Tvix: Evaluate Selection", without the `vscode` module so
// it can be unit-tested.

/** The custom request's method name, as the server registers it. */
export const EVALUATE_METHOD = "tvix/evaluate";

/** Parameters: the document the text comes from (for relative paths) and the text. */
export interface EvaluateParams {
  uri: string;
  text: string;
}

/** The server's answer: the value, printed as `tvix eval` prints it. */
export interface EvaluateResult {
  value: string;
}

/** Longer results are cut in the notification; the output channel shows them whole. */
export const NOTIFICATION_LIMIT = 200;

/** What to show for a result: the full text for the output channel and a short one. */
export interface Shown {
  full: string;
  short: string;
}

/** The text to evaluate: the selection, or the whole document when nothing is selected. */
export function textToEvaluate(selection: string, document: string): string {
  return selection.trim() === "" ? document : selection;
}

/**
 * How to show the server's answer. A result without a string `value` is reported as a
 * protocol error rather than shown as "undefined".
 */
export function showResult(result: unknown): Shown {
  if (
    typeof result !== "object" ||
    result === null ||
    typeof (result as { value?: unknown }).value !== "string"
  ) {
    const text = `tvix/evaluate returned no value: ${JSON.stringify(result)}`;
    return { full: text, short: shorten(text) };
  }
  const value = (result as EvaluateResult).value;
  return { full: value, short: shorten(value) };
}

/** One line at most, and at most NOTIFICATION_LIMIT characters. */
export function shorten(text: string): string {
  const lines = text.split("\n");
  let line = lines[0];
  let cut = lines.length > 1;
  if (line.length > NOTIFICATION_LIMIT) {
    line = line.slice(0, NOTIFICATION_LIMIT);
    cut = true;
  }
  return cut ? `${line} …` : line;
}

/** How to show a failed request: the evaluator's message (which may span lines, with a code frame). */
export function showError(error: unknown): Shown {
  const message =
    typeof error === "object" &&
    error !== null &&
    typeof (error as { message?: unknown }).message === "string"
      ? (error as { message: string }).message
      : String(error);
  return { full: message, short: shorten(message) };
}
