// Bundles every entry point in src/ (one per page) into build/ephemera/, with its CSS.
// Django serves build/ as static files (STATICFILES_DIRS); nothing is fetched at run time.
import { build } from "esbuild";
import { readdirSync } from "node:fs";

const entryPoints = readdirSync(new URL("./src/", import.meta.url))
  .filter((name) => /^[a-z][a-z0-9_-]*\.(ts|js)$/.test(name))
  .map((name) => `src/${name}`);

await build({
  entryPoints,
  bundle: true,
  outdir: "build/ephemera",
  format: "esm",
  target: ["es2022"],
  minify: true,
  sourcemap: true,
  logLevel: "info",
  loader: { ".woff": "file", ".woff2": "file", ".ttf": "file" },
});
