"""SMS providers: a Twilio-compatible client (the sandbox is ``providers.sandbox``)."""
