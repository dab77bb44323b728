"""Payment providers, payments, webhooks and refunds (arrives with the payments issue)."""
