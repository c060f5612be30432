"""Provider clients, webhooks and fakes."""
