// Node 20's built-in fetch ignores HTTPS_PROXY (NODE_USE_ENV_PROXY, which `telemetry-inspector
// exec` sets, needs Node ≥ 22.21 / 24.5): route fetch through the proxy variables as newer Node
// does, with undici's EnvHttpProxyAgent as the global dispatcher. The SDK's own options stay as
// they are; the CA comes from NODE_EXTRA_CA_CERTS as always.
import { EnvHttpProxyAgent, setGlobalDispatcher } from "undici";

const emitWarning = process.emitWarning;
process.emitWarning = (warning, ...rest) => { // (this stand-in's "experimental" notice only)
  const code = rest[0] && typeof rest[0] === "object" ? rest[0].code : rest[1];
  if (code !== "UNDICI-EHPA") emitWarning.call(process, warning, ...rest);
};
setGlobalDispatcher(new EnvHttpProxyAgent());
