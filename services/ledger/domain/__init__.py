"""The ledger's rules, free of storage and framework: the canonical entry and its
hash chain (`entry`), the RFC 9162 Merkle tree and its proofs (`merkle`), and
signed checkpoints in the C2SP signed-note format (`checkpoint`)."""
