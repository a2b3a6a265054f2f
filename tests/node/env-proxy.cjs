// Preload (`node -r tests/node/env-proxy.cjs …`): what NODE_USE_ENV_PROXY=1 does on Node ≥ 22.21 / 24.5,
// for Node 20, which ignores HTTPS_PROXY in both its https module and its fetch.
//
// `telemetry-inspector exec` sets HTTPS_PROXY and NODE_EXTRA_CA_CERTS (and NODE_USE_ENV_PROXY, which
// Node 20 does not know). An SDK that leaves the transport to Node (https.request with the default
// agent, node-fetch, the global fetch) then goes straight to the real host. This stands in for the
// newer Node's built-in support, nothing more: the SDK's own options are untouched.
//
// * https.globalAgent: an agent that opens a CONNECT tunnel through HTTPS_PROXY, then TLS inside it
//   (the CA from NODE_EXTRA_CA_CERTS, as Node always does). Read at each request by https.request.
// * fetch: undici's EnvHttpProxyAgent as the global dispatcher, when the package folder the script
//   runs in (the working directory) has `undici` installed.
"use strict";

const http = require("http");
const https = require("https");
const tls = require("tls");

const proxyUrl = process.env.HTTPS_PROXY || process.env.https_proxy;

if (proxyUrl) {
  const proxy = new URL(proxyUrl);

  class TunnelAgent extends https.Agent {
    createConnection(options, callback) {
      const target = `${options.host || options.hostname}:${options.port || 443}`;
      const connect = http.request({
        host: proxy.hostname, port: proxy.port || 80, method: "CONNECT", path: target,
        headers: { host: target }, agent: false,
      });
      connect.once("connect", (res, socket) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          callback(new Error(`proxy answered CONNECT ${target} with ${res.statusCode}`));
          return;
        }
        const secure = tls.connect({ ...options, socket, servername: options.servername || options.host });
        callback(null, secure);
      });
      connect.once("error", callback);
      connect.end();
      return undefined;  // the socket comes through the callback
    }
  }

  https.globalAgent = new TunnelAgent({ keepAlive: false });

  try {
    const emitWarning = process.emitWarning;
    process.emitWarning = (warning, ...rest) => {  // (this stand-in's own notice, not the SDK's)
      const code = rest[0] && typeof rest[0] === "object" ? rest[0].code : rest[1];
      if (code !== "UNDICI-EHPA") emitWarning.call(process, warning, ...rest);
    };
    const undici = require(require.resolve("undici", { paths: [process.cwd()] }));
    undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
  } catch (err) {
    if (err && err.code !== "MODULE_NOT_FOUND") throw err;
  }
}
