"""Read-side logic that is backend-neutral: session trees, roll-ups."""
