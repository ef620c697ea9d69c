"""Who a request is (keys, legacy tokens, OIDC JWTs) and what it may do (scopes per route)."""
