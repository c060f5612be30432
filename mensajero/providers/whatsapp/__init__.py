"""whatsapp providers."""
