"""netwarden's checks: certificates, post-quantum posture, Nmap. No model, no UI."""
