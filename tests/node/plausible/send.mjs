// Plausible's npm trackers under Node, as a page uses them: `node -r ../env-proxy.cjs send.mjs TRACKER NAME EMAIL`.
// TRACKER: `official` (@plausible-analytics/tracker 0.4.6: init + track, sent with fetch) or `legacy`
// (plausible-tracker 0.3.9: trackEvent, sent with XMLHttpRequest). Each sends exactly one event,
// NAME, with EMAIL in its props, to the trackers' default host (plausible.io). The trackers need a
// browser: a minimal one is made here (window, document, location, navigator, history,
// localStorage, ResizeObserver, and an XMLHttpRequest over Node's https module); the proxy and CA
// come from the environment (see ../env-proxy.cjs for Node 20).
// Used by fixtures/collectors/plausible/record.py and tests/test_collector_plausible.py.
import https from "node:https";
import { createRequire } from "node:module";

const [tracker, name, email] = process.argv.slice(2);
const href = "https://shop.example/pricing?plan=pro";
const page = new URL(href);
const noop = () => {};

class XMLHttpRequest {
  readyState = 0;
  status = 0;
  responseText = "";
  onreadystatechange = null;
  #method = "GET";
  #url = "";
  #headers = {};
  open(method, url) { this.#method = method; this.#url = url; this.readyState = 1; }
  setRequestHeader(key, value) { this.#headers[key] = value; }
  send(body) {
    const data = body == null ? "" : String(body);
    const req = https.request(this.#url, { method: this.#method,
      headers: { ...this.#headers, "Content-Length": Buffer.byteLength(data) } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        this.status = res.statusCode;
        this.responseText = Buffer.concat(chunks).toString();
        this.readyState = 4;
        if (this.onreadystatechange) this.onreadystatechange();
      });
    });
    req.on("error", () => { this.readyState = 4; if (this.onreadystatechange) this.onreadystatechange(); });
    req.end(data);
  }
}

const element = { scrollHeight: 2000, offsetHeight: 2000, clientHeight: 800 };
globalThis.location = { href, hostname: page.hostname, host: page.host, protocol: page.protocol, pathname: page.pathname };
globalThis.document = {
  referrer: "https://www.example.org/", visibilityState: "visible", body: element, documentElement: element,
  hasFocus: () => true, addEventListener: noop, removeEventListener: noop, querySelectorAll: () => [],
};
globalThis.window = globalThis;
if (!globalThis.navigator) globalThis.navigator = { webdriver: false, userAgent: "Mozilla/5.0 (X11; Linux x86_64)" };
globalThis.innerWidth = 1280;
globalThis.innerHeight = 800;
globalThis.scrollY = 0;
globalThis.addEventListener = noop;
globalThis.removeEventListener = noop;
globalThis.history = { pushState: noop };
globalThis.localStorage = {};
globalThis.ResizeObserver = class { observe() {} disconnect() {} };
globalThis.XMLHttpRequest = XMLHttpRequest;

const sent = new Promise((resolve) => {
  const callback = () => resolve();
  if (tracker === "official") {
    import("@plausible-analytics/tracker").then(({ init, track }) => {
      init({ domain: "shop.example", autoCapturePageviews: false, bindToWindow: false });
      track(name, { props: { plan: "pro", contact: email }, callback });
    });
  } else if (tracker === "legacy") {
    const loaded = createRequire(import.meta.url)("plausible-tracker");
    const Plausible = loaded.default || loaded;
    const { trackEvent } = Plausible({ domain: "shop.example" });
    trackEvent(name, { props: { plan: "pro", contact: email }, callback });
  } else {
    throw new Error(`unknown tracker ${tracker}`);
  }
});
const timer = setTimeout(() => { console.error("no answer in time"); process.exit(3); }, 15000);
await sent;
clearTimeout(timer);
