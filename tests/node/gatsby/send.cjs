// gatsby-telemetry as the gatsby CLI uses it: `node send.cjs NAME EMAIL`.
// The CLI's tracker (AnalyticsTracker, componentId gatsby-cli) records the METADATA event it
// always records, then trackCli(NAME) with EMAIL in a tag, and sends its buffer in this process
// (sendEvents, what the forked lib/send.js does at exit): one request of two events to
// GATSBY_TELEMETRY_API or https://analytics.gatsbyjs.com/events. The tracker's config and event
// buffer live under $XDG_CONFIG_HOME (or ~/.config)/gatsby.
// Used by fixtures/collectors/gatsby/record.py and tests/test_collector_gatsby.py.
"use strict";
const { AnalyticsTracker } = require("gatsby-telemetry/lib/telemetry");

const [name, email] = process.argv.slice(2);
const tracker = new AnalyticsTracker({ componentId: "gatsby-cli", gatsbyCliVersion: "5.14.0" });
tracker.trackCli(name, { contact: email });
tracker.sendEvents().then((ok) => process.exit(ok ? 0 : 4), () => process.exit(5));
