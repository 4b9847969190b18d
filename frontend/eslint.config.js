// ESLint, flat config: the recommended JavaScript and typescript-eslint rules over the sources,
// the tests and the build config. Types are checked by `npm run typecheck` (TypeScript 7,
// "typescript-native"); the "typescript" package (6.x) is only the parser typescript-eslint
// needs, since TypeScript 7 has no JavaScript API yet.
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  globalIgnores(["dist/", "node_modules/"]),
  js.configs.recommended,
  tseslint.configs.recommended,
);
