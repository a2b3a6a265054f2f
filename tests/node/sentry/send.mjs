// @sentry/node as an app uses it: `node send.mjs MODE NAME EMAIL`, the DSN from SENTRY_DSN
// (the SDK's own default), the proxy and CA from the environment (https_proxy,
// NODE_EXTRA_CA_CERTS). MODE: exception or message (the SDK sends a release-health session
// envelope too). Prints how many envelopes the SDK sent.
// Used to record fixtures/collectors/sentry/ and by tests/test_collector_sentry.py.
import * as Sentry from "@sentry/node";

const [mode, name, email] = process.argv.slice(2);
Sentry.init({ release: "shop@1.4.2", environment: "test" });
// How many envelopes the SDK hands its transport (each is one HTTP request; a retry would be more).
let envelopes = 0;
Sentry.getClient().on("beforeEnvelope", () => { envelopes += 1; });
Sentry.setUser({ id: "user-4711" });
Sentry.setExtra("contact", email);
if (mode === "exception") {
  Sentry.captureException(new TypeError(name));
} else if (mode === "message") {
  Sentry.captureMessage(name);
} else {
  throw new Error(`unknown mode ${mode}`);
}
await Sentry.close(10000);
console.log(`envelopes: ${envelopes}`);
