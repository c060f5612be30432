"""WhatsApp providers: the Evolution API client (the sandbox lives in ``providers.sandbox``)."""
