"""Channel providers: one protocol per channel, a sandbox and a real HTTP client each."""
