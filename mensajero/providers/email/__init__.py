"""Email providers: the Resend client (the sandbox lives in ``providers.sandbox``)."""
