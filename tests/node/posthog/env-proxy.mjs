// Node 20's fetch ignores HTTP(S)_PROXY; newer Node honours them with NODE_USE_ENV_PROXY=1
// (which `telemetry-inspector exec` sets). Preloaded (`node --import ./env-proxy.mjs …`) so the
// SDK under test, configured as usual, goes through the proxy the environment names.
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici'

if (process.env.HTTPS_PROXY || process.env.https_proxy || process.env.HTTP_PROXY || process.env.http_proxy) {
  setGlobalDispatcher(new EnvHttpProxyAgent())
}
