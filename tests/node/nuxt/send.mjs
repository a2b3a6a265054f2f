// @nuxt/telemetry as Nuxt runs it: `node -r ../env-proxy.cjs send.mjs COMMAND NAME EMAIL` (COMMAND as
// `nuxi COMMAND` puts it in argv[2], which the module reports).
// Nuxt itself is not installed (it is large): a minimal Nuxt instance stands in for the one `nuxi`
// builds (version, options, hooks), and the module is installed as Nuxt installs every module
// (`await module(inlineOptions, nuxt)`), then Nitro's init hook is called, which is when the module
// creates its events and sends them — one request to its default endpoint, https://telemetry.nuxt.com.
// `telemetry: true` is the project's own opt-in (nuxt.config), so no consent prompt. A module of
// the app adds one event of its own through the `telemetry:setup` hook: NAME, with EMAIL.
// Used by fixtures/collectors/nuxt/record.py and tests/test_collector_nuxt.py.
import telemetry from "@nuxt/telemetry";

const [, name, email] = process.argv.slice(2);
const hooks = new Map();
const nuxt = {
  _version: "4.6.3",
  options: {
    rootDir: process.cwd(), dev: false, ssr: true, telemetry: true, modules: [],
    _installedModules: [{ meta: { name: "@nuxtjs/tailwindcss", version: "6.14.0" }, timings: { setup: 12 } }],
  },
  hook(hook, fn) { hooks.set(hook, [...(hooks.get(hook) || []), fn]); },
  async callHook(hook, ...args) { for (const fn of hooks.get(hook) || []) await fn(...args); },
};
nuxt.hook("telemetry:setup", (t) => { t.events.push(Promise.resolve({ name, contact: email })); });
await telemetry({}, nuxt);
await nuxt.callHook("nitro:init", { options: { preset: "node-server" } });
