"""What you have: the balance's own table, the append-only ledger, debts, Stripe top-ups, the audit.
Balances and debts move only through `accounts.billing.ledger`: one ledger row per event, never below 0."""
