// Lay out an installed app whose dependency reports with scarf-js: `node make-app.mjs DIR [CONTACT]`.
// DIR/package.json is the app (shop-app, the root package), which depends on ui-kit, which depends on
// scarfed-lib, which depends on @scarf/scarf (a copy of the one installed here), laid out flat as
// `npm install` leaves them; scarf-js's
// postinstall is then `node DIR/node_modules/@scarf/scarf/report.js` with INIT_CWD=DIR, as npm runs
// it. `npm ls` (which report.js calls) finds parent scarfed-lib and grandparent ui-kit. CONTACT, if
// given, goes into scarfed-lib's `scarfSettings`, which report.js sends as they are.
// Used by fixtures/collectors/scarf/record.py and tests/test_collector_scarf.py.
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [dir, contact] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const write = (path, data) => { mkdirSync(dirname(path), { recursive: true }); writeFileSync(path, JSON.stringify(data, null, 2)); };
write(join(dir, "package.json"), { name: "shop-app", version: "2.3.1", private: true,
  dependencies: { "ui-kit": "0.9.0" } });
write(join(dir, "node_modules", "ui-kit", "package.json"), { name: "ui-kit", version: "0.9.0",
  dependencies: { "scarfed-lib": "1.0.0" } });
write(join(dir, "node_modules", "scarfed-lib", "package.json"), { name: "scarfed-lib", version: "1.0.0",
  dependencies: { "@scarf/scarf": "1.4.0" }, ...(contact ? { scarfSettings: { contact } } : {}) });
cpSync(join(here, "node_modules", "@scarf", "scarf"), join(dir, "node_modules", "@scarf", "scarf"), { recursive: true });
