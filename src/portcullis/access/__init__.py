"""Access governance: entitlements, roles, requests and approvals, grants, findings (§19, §21, §22, §24, §25)."""
