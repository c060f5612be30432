"""sms providers."""
