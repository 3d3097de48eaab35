"""Certificate and certificate-storing device register, discovery, renewal (§29-30)."""
