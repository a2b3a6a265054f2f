"""Verification of claims about a command's telemetry: isolation, opt-outs, canaries, reports.

`telemetry-inspector exec` uses this package to prove what a command sends: in a network
namespace whose only way out is the inspector (`netns`, `nsinit`, `bridge`, `dns`,
`packets`), or by watching its sockets where it cannot isolate (`bypass`); with every known
opt-out set (`optouts`), twice to compare (`compare`), with planted canary values (`canary`);
and writes the verification report (`report`). See docs/verification.md.

Importing this package imports nothing else: `nsinit` runs as a stand-alone helper.
"""
