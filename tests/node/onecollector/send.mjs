// Microsoft's 1DS SDK (1ds-core-js + 1ds-post-js) as an app uses it:
// `node send.mjs EVENT EMAIL [ENDPOINT]`. The instrumentation key (a tenant token, made up) is
// the only setting; ENDPOINT, when given, is set as `endpointUrl` the way VS Code sets its own
// (https://mobile.events.data.microsoft.com/OneCollector/1.0), else the SDK's default. One
// event with the e-mail in a property, then the channel is flushed and the core unloaded: one
// POST. Prints `requests: N` (fetch calls the SDK made) and `status: …` (the answers it got).
// Used by fixtures/collectors/onecollector/record.py and tests/test_collector_onecollector.py.
import "./proxy-env.mjs";
import core1ds from "@microsoft/1ds-core-js";
import post1ds from "@microsoft/1ds-post-js";

const { AppInsightsCore } = core1ds;
const { PostChannel } = post1ds;
const [event, email, endpoint] = process.argv.slice(2);
const IKEY = "0c6ae279ed8443289764825290e4f9e2-1a736e7c-1324-4338-be46-fc2a58ae4d14-7255"; // made up

let requests = 0;
const statuses = [];
const fetchOf = globalThis.fetch;
globalThis.fetch = async (...args) => { // counts, changes nothing
  requests += 1;
  const response = await fetchOf(...args);
  statuses.push(response.status);
  return response;
};

const core = new AppInsightsCore();
const post = new PostChannel();
const config = { instrumentationKey: IKEY, extensions: [post], extensionConfig: {} };
if (endpoint) config.endpointUrl = endpoint;
core.initialize(config, []);
core.track({
  name: event,
  baseData: {},
  data: { "common.machineId": "5d2f3c8a9b7e6d1c0f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e", contact: email,
          "common.extname": "acme.shop" },
});
await new Promise((resolve) => post.flush(true, resolve));
await new Promise((resolve) => setTimeout(resolve, 1500)); // (a retry would show here)
core.unload(false);
console.log(`requests: ${requests}`);
console.log(`status: ${statuses.join(",")}`);
