// Datadog's browser SDKs as a web page uses them, run under Node with browser-shim.mjs:
// `node send.mjs MODE NAME EMAIL`. MODE: `logs` (@datadog/browser-logs: logger.info(NAME) with
// the e-mail in its attributes), `rum` (@datadog/browser-rum: addAction(NAME) with the e-mail in
// its context, and an error), `rum-deflate` (the same with `compressIntakeRequests`, the SDK's
// deflate worker). Only the normal init options are set (client token, application id, site,
// service, sample rates); the proxy and CA come from the environment. The page is then hidden,
// so the SDKs flush. Prints `requests: N` (fetch calls the SDKs made) and `status: …`.
// Used by fixtures/collectors/datadog/record.py and tests/test_collector_datadog.py.
import "./proxy-env.mjs";
import { hidePage } from "./browser-shim.mjs";

const [mode, name, email] = process.argv.slice(2);
const CLIENT_TOKEN = "pub0123456789abcdef0123456789abcdef"; // made up
let requests = 0;
const statuses = [];
const fetchOf = globalThis.fetch;
globalThis.fetch = async (...args) => { // counts, changes nothing
  requests += 1;
  const response = await fetchOf(...args);
  statuses.push(response.status);
  return response;
};

if (mode === "logs") {
  const { datadogLogs } = await import("@datadog/browser-logs");
  datadogLogs.init({ clientToken: CLIENT_TOKEN, site: "datadoghq.com", service: "shop", env: "test",
                     sessionSampleRate: 100, forwardErrorsToLogs: false, sessionPersistence: "local-storage" });
  datadogLogs.setUser({ id: "user-4711", name: "Jane Doe" });
  datadogLogs.logger.info(name, { contact: email, cart: { items: 3 } });
} else if (mode === "rum" || mode === "rum-deflate") {
  const { datadogRum } = await import("@datadog/browser-rum");
  datadogRum.init({ applicationId: "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", clientToken: CLIENT_TOKEN,
                    site: mode === "rum" ? "datadoghq.eu" : "us5.datadoghq.com", service: "shop", env: "test",
                    sessionSampleRate: 100, sessionReplaySampleRate: 0, telemetrySampleRate: 0,
                    sessionPersistence: "local-storage", compressIntakeRequests: mode === "rum-deflate" });
  datadogRum.setUser({ id: "user-4711", name: "Jane Doe" });
  datadogRum.addAction(name, { contact: email });
  datadogRum.addError(new Error("payment declined"));
} else {
  throw new Error(`unknown mode ${mode}`);
}
await new Promise((resolve) => setTimeout(resolve, 1500));
hidePage();
await new Promise((resolve) => setTimeout(resolve, 2500)); // the flush, and any retry
console.log(`requests: ${requests}`);
console.log(`status: ${statuses.join(",")}`);
process.exit(0); // (the SDKs keep timers for the next batch)
