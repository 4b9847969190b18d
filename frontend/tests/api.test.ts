import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, call, errorText } from "../src/lib/api";

describe("errorText", () => {
  it("prefers DRF's detail", () => {
    expect(errorText({ detail: "Not found.", other: ["x"] })).toBe("Not found.");
  });

  it("lists field errors, nested ones as JSON", () => {
    expect(errorText({ random_share: ["Ensure this value is less than or equal to 1."], payload: { boxes: ["no area"] } }))
      .toBe('random_share: Ensure this value is less than or equal to 1.; payload: {"boxes":["no area"]}');
  });

  it("says nothing for an empty or non-JSON answer", () => {
    expect(errorText(null)).toBe("");
    expect(errorText("oops")).toBe("");
  });
});

describe("call", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("throws an ApiError that carries the field errors", async () => {
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ hotkey: ["Taken."] }), { status: 400 }));
    const error = await call("GET", "/api/x/").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(400);
    expect((error as ApiError).message).toBe("hotkey: Taken.");
  });

  it("falls back to the method, URL and status when the answer says nothing", async () => {
    vi.stubGlobal("fetch", async () => new Response("", { status: 502 }));
    await expect(call("GET", "/api/x/")).rejects.toThrow("GET /api/x/ failed with HTTP 502");
  });
});
