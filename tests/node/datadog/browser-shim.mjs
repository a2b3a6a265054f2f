// The few browser globals Datadog's browser SDKs need, so they run unchanged under Node: a
// window (an EventTarget) with a document, a location, a navigator and a Storage. The SDK's
// own code builds and sends every request (fetch, the intake URL, the batch), nothing here
// touches them. `hidePage()` plays the tab being hidden: the SDKs flush their batches then.
const entries = new Map();
const storage = {
  getItem: (k) => (entries.has(k) ? entries.get(k) : null),
  setItem: (k, v) => void entries.set(k, String(v)),
  removeItem: (k) => void entries.delete(k),
  clear: () => entries.clear(),
  key: (i) => [...entries.keys()][i] ?? null,
  get length() { return entries.size; },
};
const target = new EventTarget();
let cookies = "";
globalThis.window = globalThis;
globalThis.addEventListener = target.addEventListener.bind(target);
globalThis.removeEventListener = target.removeEventListener.bind(target);
globalThis.dispatchEvent = target.dispatchEvent.bind(target);
globalThis.localStorage = storage;
globalThis.sessionStorage = storage;
globalThis.location = new URL("https://shop.example.com/checkout?step=2");
Object.defineProperty(globalThis, "navigator", {
  configurable: true,
  // no sendBeacon: the SDK falls back to fetch, which goes through the proxy
  value: { userAgent: "Mozilla/5.0 (X11; Linux x86_64) telemetry-inspector-test", onLine: true,
           language: "en-GB", languages: ["en-GB"], cookieEnabled: true },
});
globalThis.document = {
  readyState: "complete", visibilityState: "visible", hidden: false, referrer: "", title: "Checkout",
  location: globalThis.location, baseURI: globalThis.location.href,
  get cookie() { return cookies; },
  set cookie(value) { cookies = String(value).split(";")[0]; },
  addEventListener: globalThis.addEventListener, removeEventListener: globalThis.removeEventListener,
  hasFocus: () => true,
  querySelector: () => null,
  querySelectorAll: () => [],
  getElementsByTagName: () => [],
  documentElement: { scrollTop: 0, scrollLeft: 0, clientWidth: 1280, clientHeight: 800 },
};

globalThis.history = { length: 1, state: null, pushState() {}, replaceState() {}, back() {}, forward() {}, go() {} };
globalThis.MutationObserver = class { observe() {} disconnect() {} takeRecords() { return []; } };
globalThis.ResizeObserver = class { observe() {} unobserve() {} disconnect() {} };
globalThis.requestAnimationFrame ??= (callback) => setTimeout(() => callback(performance.now()), 16);
globalThis.cancelAnimationFrame ??= (id) => clearTimeout(id);
globalThis.innerWidth = 1280;
globalThis.innerHeight = 800;
globalThis.screen = { width: 1280, height: 800, orientation: { type: "landscape-primary" } };

export function hidePage() {
  document.visibilityState = "hidden";
  document.hidden = true;
  const event = new Event("visibilitychange");
  event.__ddIsTrusted = true; // the SDKs ignore script-made events; this one plays the browser's
  globalThis.dispatchEvent(event);
}

// A Web Worker for the SDK's own worker script (browser-rum's deflate worker, made from a Blob
// URL): the script runs in this thread with its own `self`; messages go both ways
// asynchronously, as structured clones, as in a browser.
import { resolveObjectURL } from "node:buffer";

function deliver(target, data) {
  setTimeout(() => {
    const event = new MessageEvent("message", { data: structuredClone(data) });
    event.__ddIsTrusted = true;
    target.dispatchEvent(event);
  }, 0);
}

globalThis.Worker = class Worker extends EventTarget {
  constructor(url) {
    super();
    const scope = new EventTarget();
    scope.postMessage = (data) => deliver(this, data);
    this._scope = scope;
    this._ready = resolveObjectURL(String(url)).text().then((code) => {
      new Function("self", code)(scope); // the SDK's worker code, unchanged
    });
  }

  postMessage(data) {
    this._ready.then(() => deliver(this._scope, data));
  }

  terminate() {}
};
