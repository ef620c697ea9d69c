"""Outbound HTTP for agents' tool calls: URLs parsed once, names resolved once, connections made to
the address that was checked, every redirect hop checked again. What is allowed is the caller's
`Guard`; this package only makes sure the check and the connection see the same thing."""
