// @segment/analytics-node as an app uses it: `node send.mjs EVENT EMAIL`. Only the write key is
// set (the default host, api.segment.io); the proxy and CA come from the environment. A track
// (the e-mail in a property) and an identify, flushed once by closeAndFlush: one /v1/batch.
// Prints `requests: N` from the SDK's own `http_request` notifications and `errors: N` from its
// `error` ones. Used by fixtures/collectors/segment/record.py and tests/test_collector_segment.py.
import "./proxy-env.mjs";
import { Analytics } from "@segment/analytics-node";

const [event, email] = process.argv.slice(2);
let requests = 0;
let errors = 0;
const analytics = new Analytics({ writeKey: "wk5f2c9a1e7b3d4c60TestOnly" });
analytics.on("http_request", () => { requests += 1; });
analytics.on("error", (err) => { errors += 1; console.error("error:", err?.reason ?? err); });
analytics.track({ userId: "user-4711", event, properties: { plan: "pro", contact: email } });
analytics.identify({ userId: "user-4711", traits: { name: "Jane Doe", plan: "pro" } });
await analytics.closeAndFlush({ timeout: 20000 });
console.log(`requests: ${requests}`);
console.log(`errors: ${errors}`);
