"""The decode layers, one module each (several for one kind, as the compressions): each registers
its `DecodeLayer`s with `inspector.core.decode.registry` when the registry loads this package."""
