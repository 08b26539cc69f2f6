import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NOTIFICATION_LIMIT, shorten, showError, showResult, textToEvaluate } from "../evaluate";

describe("evaluate selection", () => {
  it("evaluates the selection, or the whole document when nothing is selected", () => {
    assert.equal(textToEvaluate("1 + 1", "{ a = 1 + 1; }"), "1 + 1");
    assert.equal(textToEvaluate("", "{ a = 1; }"), "{ a = 1; }");
    assert.equal(textToEvaluate(" \n ", "{ a = 1; }"), "{ a = 1; }");
  });

  it("shows the value, shortened for the notification", () => {
    assert.deepEqual(showResult({ value: "{ a = 2; }" }), { full: "{ a = 2; }", short: "{ a = 2; }" });
    const long = "x".repeat(NOTIFICATION_LIMIT + 10);
    assert.equal(showResult({ value: long }).full, long);
    assert.equal(showResult({ value: long }).short, `${"x".repeat(NOTIFICATION_LIMIT)} …`);
    assert.equal(showResult({ value: "[\n  1\n  2\n]" }).short, "[ …");
  });

  it("reports an answer without a value instead of showing undefined", () => {
    for (const bad of [null, {}, { value: 3 }, "text"]) {
      assert.match(showResult(bad).full, /^tvix\/evaluate returned no value: /);
    }
  });

  it("shows the evaluator's error message", () => {
    const e = new Error("error: undefined variable 'x'\n at «selection»:1:1");
    assert.equal(showError(e).full, e.message);
    assert.equal(showError(e).short, "error: undefined variable 'x' …");
    assert.equal(showError({ message: "boom", code: -32603 }).full, "boom");
    assert.equal(showError("plain").full, "plain");
  });

  it("keeps short single lines whole", () => {
    assert.equal(shorten("42"), "42");
    assert.equal(shorten(""), "");
  });
});
