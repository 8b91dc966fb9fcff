// Copies the third-party files the API's pages load (Swagger UI for /schema) into dist/vendor: no CDN at run time.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const swagger = join(root, "node_modules", "swagger-ui-dist");
const target = join(root, "dist", "vendor", "swagger-ui");
mkdirSync(target, { recursive: true });
for (const name of ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png"]) {
  copyFileSync(join(swagger, name), join(target, name));
}
