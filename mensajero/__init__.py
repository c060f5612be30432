"""mensajero: multi-channel messaging backend."""
