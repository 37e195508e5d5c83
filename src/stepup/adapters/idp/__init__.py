"""Identity-provider adapters: password, OIDC, SAML."""
