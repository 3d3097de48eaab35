"""Where key material lives: the software envelope or a PKCS#11 token."""
