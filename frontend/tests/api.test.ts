import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, call, callAll, errorText } from "../src/lib/api";

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

describe("callAll", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("follows next links until the last page", async () => {
    const pages: Record<string, unknown> = {
      "/api/x/": { count: 3, next: "/api/x/?limit=2&offset=2", previous: null, results: [1, 2] },
      "/api/x/?limit=2&offset=2": { count: 3, next: null, previous: "/api/x/", results: [3] },
    };
    const asked: string[] = [];
    vi.stubGlobal("fetch", async (url: string) => {
      asked.push(url);
      return new Response(JSON.stringify(pages[url]), { status: 200 });
    });
    expect(await callAll<number>("/api/x/")).toEqual([1, 2, 3]);
    expect(asked).toEqual(["/api/x/", "/api/x/?limit=2&offset=2"]);
  });
});
