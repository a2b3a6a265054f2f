"""telemetry-inspector as a mitmproxy addon script.

    mitmdump -s addons/telemetry_inspector.py --set ti_store=~/.local/share/telemetry-inspector/store.json
    mitmweb  -s addons/telemetry_inspector.py --set ti_block_all=true
    mitmproxy -s addons/telemetry_inspector.py --set ti_keys=keys/

Options (all prefixed ti_): store, policies, keys, default_action, block_all, discover,
block_mode, block_status, redact, max_events — see `mitmdump --options | grep ti_`.
The addon sets connection_strategy=lazy, so a blocked request never connects upstream.
In mitmweb and the mitmproxy console a telemetry request shows decoded and audited in the
"Telemetry" contentview (chosen automatically), and carries a marker and its rule as comment.
Requires the telemetry-inspector package in the same Python environment as mitmproxy.
"""

from inspector.proxy.addon import TelemetryInspector

addon = TelemetryInspector()
addon.freeze_at_start = True  # mitmproxy's process is the proxy's: start-up's objects frozen once it runs
addons = [addon]
