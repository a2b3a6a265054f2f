"""The live proxy: the mitmproxy addon and its embedding. Imports mitmproxy (not core)."""
