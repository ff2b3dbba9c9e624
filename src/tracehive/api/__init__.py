"""HTTP routes by resource, auth, and the mapping of errors to the contract's error body."""
