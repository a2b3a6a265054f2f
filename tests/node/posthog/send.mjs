// Drive the real posthog-node SDK with its default host (only proxy/CA variables set).
// `node --import ./env-proxy.mjs send.mjs MODE EVENT EMAIL`; MODE: capture (one /batch/ request),
// flags (one getFeatureFlag: one /flags request). Exits non-zero if the SDK reports an error.
import { PostHog } from 'posthog-node'

const TOKEN = 'phc_TestProjectToken0123456789abcdefABCDEF' // a made-up project token
const [mode, event, email] = process.argv.slice(2)
const client = new PostHog(TOKEN, { flushAt: 100, flushInterval: 0 })
let failed = null
client.on('error', (err) => { failed = err })

if (mode === 'capture') {
  client.capture({ distinctId: 'user-42', event, properties: { email, plan: 'pro' } })
} else if (mode === 'flags') {
  const value = await client.getFeatureFlag(event, 'user-42', { personProperties: { email }, sendFeatureFlagEvents: false })
  console.log(`flag=${JSON.stringify(value)}`)
} else {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
await client.shutdown()
if (failed) {
  console.error(`posthog-node: ${failed}`)
  process.exit(1)
}
console.log('sent')
