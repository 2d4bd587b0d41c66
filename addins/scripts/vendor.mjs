// Copy the one browser file the pane needs from node_modules into office/vendor/, so the
// API's static mount serves it locally (no CDN). Run by `npm ci` (postinstall).
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const files = [["@azure/msal-browser/lib/msal-browser.min.js", "msal-browser.min.js"]];
mkdirSync(join(root, "office", "vendor"), { recursive: true });
for (const [from, to] of files) {
  const source = join(root, "node_modules", from);
  if (!existsSync(source)) {
    console.error(`vendor: ${from} is missing (run npm ci in addins/)`);
    process.exit(1);
  }
  copyFileSync(source, join(root, "office", "vendor", to));
}
console.log(`vendor: copied ${files.length} file(s) into office/vendor/`);
